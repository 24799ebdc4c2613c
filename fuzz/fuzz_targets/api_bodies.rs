//! The API's request bodies, as the daemon takes them: JSON decoding, the
//! keyword references and values of an edit, and the values' rules. Never
//! a panic.
#![no_main]
use berth_api_types::bodies::{CreateRequest, EditRequest, SelectorQuery};
use berth_model::{check_keyword, KeywordRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let registry = berth_drivers::registry();
    if let Ok(e) = serde_json::from_slice::<EditRequest>(data) {
        let _ = berth_model::Selector::parse(&e.selector);
        for kv in e.set.iter().chain(&e.unset) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            if let Ok(r) = KeywordRef::parse(k) {
                let dotted = format!("{}.{}", r.section, r.base_key());
                if let Some((_, kw)) = registry.lookup(&dotted) {
                    let _ = check_keyword(kw, v);
                }
            }
        }
    }
    if let Ok(c) = serde_json::from_slice::<CreateRequest>(data) {
        let _ = c.path.parse::<berth_model::ObjectPath>();
        if let Some(text) = &c.config {
            if let Ok(doc) = berth_model::ConfigDoc::parse(text) {
                let _ = berth_model::validate(&doc, &registry);
            }
        }
    }
    let _ = serde_json::from_slice::<SelectorQuery>(data);
});
