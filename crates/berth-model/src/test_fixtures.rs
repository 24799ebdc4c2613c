//! Small fake keyword tables shared by unit tests.

use crate::rules::Rule;
use crate::schema::{Keyword, KeywordTable, KwType, Registry};

const fn kw(name: &'static str, kind: KwType) -> Keyword {
    Keyword {
        name,
        kind,
        default: None,
        required: false,
        scopable: false,
        text: "test keyword",
        example: None,
        rule: Rule::None,
    }
}

pub static DEFAULT_TABLE: KeywordTable = KeywordTable {
    family: "DEFAULT",
    rtype: None,
    text: "object settings",
    keywords: &[
        kw("id", KwType::Uuid),
        Keyword {
            scopable: true,
            ..kw("env", KwType::String)
        },
        Keyword {
            default: Some("no"),
            ..kw("orchestrate", KwType::Enum(&["no", "ha"]))
        },
        kw("app", KwType::String),
        kw("nodes", KwType::List),
    ],
};

pub static DOCKER_TABLE: KeywordTable = KeywordTable {
    family: "container",
    rtype: Some("docker"),
    text: "docker container",
    keywords: &[
        Keyword {
            required: true,
            scopable: true,
            example: Some("nginx:1"),
            ..kw("image", KwType::String)
        },
        kw("command", KwType::List),
        Keyword {
            default: Some("0"),
            ..kw("restart", KwType::Int)
        },
        Keyword {
            default: Some("30s"),
            ..kw("start_timeout", KwType::Duration)
        },
        Keyword {
            default: Some("false"),
            ..kw("privileged", KwType::Bool)
        },
        kw("hostname", KwType::String),
    ],
};

pub static PODMAN_TABLE: KeywordTable = KeywordTable {
    family: "container",
    rtype: Some("podman"),
    text: "podman container",
    keywords: &[
        Keyword {
            required: true,
            ..kw("image", KwType::String)
        },
        kw("userns", KwType::String),
    ],
};

pub static VOLUME_TABLE: KeywordTable = KeywordTable {
    family: "volume",
    rtype: Some("local"),
    text: "local volume",
    keywords: &[
        kw("name", KwType::String),
        Keyword {
            default: Some("1g"),
            ..kw("size", KwType::Size)
        },
    ],
};

pub fn registry() -> Registry {
    Registry::new(vec![
        &DEFAULT_TABLE,
        &DOCKER_TABLE,
        &PODMAN_TABLE,
        &VOLUME_TABLE,
    ])
}
