//! Selectors and globs: never a panic; a parsed selector keeps its text.
#![no_main]
use berth_model::{glob_match, Selectable, Selector};
use libfuzzer_sys::fuzz_target;

struct Obj(berth_model::ObjectPath);

impl Selectable for Obj {
    fn object_path(&self) -> &berth_model::ObjectPath {
        &self.0
    }
    fn keyword_value(&self, kw: &str) -> Option<String> {
        (kw == "DEFAULT.env").then(|| "PRD".to_string())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = glob_match(s, "app1-prd");
    let _ = berth_model::glob::classes_closed(s);
    if let Ok(sel) = Selector::parse(s) {
        assert_eq!(sel.as_str(), s);
        let obj = Obj("app1-prd/svc1".parse().expect("path"));
        let _ = sel.matches(&obj);
        let _ = sel.exact_paths();
        let _ = sel.reads_keywords();
    }
});
