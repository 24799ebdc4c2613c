//! Query strings, as the Consul API reads them: never a panic, and a
//! parsed wait never over Consul's cap.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = berth_consul::params::Params::parse(Some(q)) {
        let _ = p.conflicting(&["recurse", "keys"]);
        if let Ok(o) = p.read_opts() {
            assert!(o.wait <= berth_consul::params::MAX_WAIT);
        }
    }
    if let Some(d) = berth_consul::duration::parse(q) {
        let _ = berth_consul::duration::format(d);
    }
});
