//! Transaction and session bodies: never a panic; a decoded transaction
//! keeps Consul's limit on operations.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ops) = berth_consul::decode_txn(data) {
        assert!(ops.len() <= 128);
    }
    let _ = berth_consul::decode_session(data, "node");
});
