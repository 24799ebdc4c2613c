use berth_model::{Keyword, KeywordTable, KwType, Rule};

/// Both volume types share their `type` keyword.
const TYPE: Keyword = Keyword {
    name: "type",
    kind: KwType::Enum(&["docker", "directory"]),
    default: Some("docker"),
    required: false,
    scopable: false,
    text: "docker: a named docker volume. directory: a host directory.",
    example: Some("directory"),
    rule: Rule::None,
};

pub static DOCKER_TABLE: KeywordTable = KeywordTable {
    family: "volume",
    rtype: Some("docker"),
    text: "A named docker volume, created on start if missing and never deleted by berth.",
    keywords: &[
        TYPE,
        Keyword {
            name: "name",
            kind: KwType::String,
            default: None,
            required: false,
            scopable: true,
            text: "Volume name. Defaults to <ns>..<name>.vol.<idx>. Mount it with container volume_mounts=<name>:/dir.",
            example: Some("{namespace}-data"),
            rule: Rule::None,
        },
    ],
};

pub static DIRECTORY_TABLE: KeywordTable = KeywordTable {
    family: "volume",
    rtype: Some("directory"),
    text: "A host directory, created on start if missing. Mount it with container volume_mounts=<path>:/dir.",
    keywords: &[
        TYPE,
        Keyword {
            name: "path",
            kind: KwType::String,
            default: None,
            required: true,
            scopable: true,
            text: "Absolute host directory.",
            example: Some("/srv/{path}/data"),
            rule: Rule::AbsPath,
        },
    ],
};
