//! The config parser and renderer: what parses renders back byte for byte
//! (less a byte-order mark), re-parses to the same document, survives an
//! edit, and validates without a panic.
#![no_main]
use berth_model::ConfigDoc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = ConfigDoc::parse(text) else {
        return;
    };
    let rendered = doc.render();
    assert_eq!(rendered, text.strip_prefix('\u{feff}').unwrap_or(text));
    let again = ConfigDoc::parse(&rendered).expect("a rendered document parses");
    assert_eq!(again.sections(), doc.sections());
    for s in doc.sections() {
        assert_eq!(again.keys(&s), doc.keys(&s));
    }
    let registry = berth_drivers::registry();
    let _ = berth_model::validate(&doc, &registry);
    let mut edited = doc.clone();
    if edited.try_set("container#0", "image", "busybox:1").is_ok() {
        let r = edited.render();
        let e = ConfigDoc::parse(&r).expect("an edited document parses");
        assert_eq!(e.get("container#0", "image").as_deref(), Some("busybox:1"));
        edited.unset("container#0", "image");
        ConfigDoc::parse(&edited.render()).expect("an unset document parses");
    }
});
