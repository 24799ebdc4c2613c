//! Query names, as the DNS server reads them: never a panic, and a name
//! outside the domain is never taken for one inside it.
#![no_main]
use berth_dns::names::{parse, Lookup};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let got = parse(name, "berth", "dc1");
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    if !(lower == "berth" || lower.ends_with(".berth")) {
        assert_eq!(got, Lookup::Outside);
    }
});
