//! Volume resources: a named docker volume, or a host directory.

pub mod keywords;

use berth_engine::{Engine, EngineError};
use berth_model::{ObjectPath, Section};
use std::collections::HashMap;

/// What a volume resource provides.
#[derive(Clone, Debug, PartialEq)]
pub enum VolumeSpec {
    Docker { name: String },
    Directory { path: String },
}

impl VolumeSpec {
    pub fn from_section(path: &ObjectPath, s: &Section) -> VolumeSpec {
        match s.rtype.as_deref() {
            Some("directory") => VolumeSpec::Directory {
                path: s.get_str("path").unwrap_or_default().to_string(),
            },
            _ => VolumeSpec::Docker {
                name: s
                    .get_str("name")
                    .map(str::to_string)
                    .unwrap_or_else(|| default_volume_name(path, s.index.unwrap_or(0))),
            },
        }
    }

    pub fn label(&self) -> String {
        match self {
            VolumeSpec::Docker { name } => format!("docker volume {name}"),
            VolumeSpec::Directory { path } => format!("directory {path}"),
        }
    }

    pub async fn exists(&self, engine: &Engine) -> Result<bool, EngineError> {
        match self {
            VolumeSpec::Docker { name } => engine.volume_exists(name).await,
            VolumeSpec::Directory { path } => Ok(std::path::Path::new(path).is_dir()),
        }
    }

    pub async fn provision(&self, engine: &Engine, path: &ObjectPath) -> Result<(), EngineError> {
        match self {
            VolumeSpec::Docker { name } => {
                if !engine.volume_exists(name).await? {
                    let labels = HashMap::from([("berth.path".to_string(), path.to_string())]);
                    engine.create_volume(name, labels).await?;
                }
                Ok(())
            }
            VolumeSpec::Directory { path } => std::fs::create_dir_all(path).map_err(|e| {
                EngineError::Io(std::io::Error::new(e.kind(), format!("mkdir {path}: {e}")))
            }),
        }
    }
}

/// `<ns>..<name>.vol.<idx>`, the root namespace dropping its prefix, like containers.
pub fn default_volume_name(path: &ObjectPath, idx: u32) -> String {
    format!("{}.vol.{idx}", crate::container_docker::object_prefix(path))
}
