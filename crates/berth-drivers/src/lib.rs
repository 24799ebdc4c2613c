//! Resource drivers. Each driver is a folder holding its keyword table
//! (`keywords.rs`) next to its code; validation, `berth doc` and the API's
//! JSON schema all read those tables through [`registry`].

pub mod container_docker;
pub mod default;
pub mod volume;

use berth_model::Registry;

/// Every keyword table berth knows, in documentation order.
pub fn registry() -> Registry {
    Registry {
        tables: vec![
            &default::keywords::TABLE,
            &container_docker::keywords::TABLE,
            &volume::keywords::DOCKER_TABLE,
            &volume::keywords::DIRECTORY_TABLE,
        ],
    }
}

/// Resource ids (`container#0`) as they appear in status, in start order:
/// volumes first, then containers.
pub fn start_order(family: &str) -> u8 {
    match family {
        "volume" => 0,
        _ => 1,
    }
}
