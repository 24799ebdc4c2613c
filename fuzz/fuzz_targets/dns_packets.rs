//! Whole DNS queries, as the UDP and TCP listeners get them: never a
//! panic; an answer always parses, carries the query's id, and over UDP
//! without EDNS fits in 512 bytes.
#![no_main]
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&udp, query)) = data.split_first() else {
        return;
    };
    let udp = udp & 1 == 1;
    let Some(answer) = berth_dns::answer_for_fuzzing(query, udp) else {
        return;
    };
    let m = Message::from_vec(&answer).expect("an answer berth sent does not parse");
    assert_eq!(m.id().to_be_bytes(), [query[0], query[1]]);
    let edns = Message::from_vec(query).ok().and_then(|q| q.extensions().clone());
    if udp && edns.is_none() && query.len() <= 256 {
        assert!(answer.len() <= 512, "{} bytes over UDP without EDNS", answer.len());
    }
});
