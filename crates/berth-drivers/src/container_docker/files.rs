//! `secrets` and `configs`: values of a `sec` or `cfg` object of the same
//! namespace, delivered into the container as read-only files
//! (`<object>/<key>:<container path>`). The agent writes them on a tmpfs
//! of the host and bind-mounts each file.

/// Which kind of object a file comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileSource {
    Secret,
    Config,
}

/// One delivered file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    pub source: FileSource,
    /// The `sec` or `cfg` object's name, in the service's namespace.
    pub object: String,
    pub key: String,
    /// Absolute path in the container.
    pub target: String,
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses one `<object>/<key>:<container path>` word.
pub fn parse_file_ref(source: FileSource, word: &str) -> Result<FileRef, String> {
    let (from, target) = word
        .split_once(':')
        .ok_or_else(|| format!("{word:?}: write <object>/<key>:<container path>"))?;
    let (object, key) = from
        .split_once('/')
        .ok_or_else(|| format!("{word:?}: write <object>/<key>:<container path>"))?;
    if !name_ok(object) || !name_ok(key) {
        return Err(format!(
            "{word:?}: object and key names are A-Z a-z 0-9 . _ -, not . or .."
        ));
    }
    if !target.starts_with('/') || target.split('/').any(|p| p == "..") || target == "/" {
        return Err(format!(
            "{word:?}: the container path is absolute, without .."
        ));
    }
    Ok(FileRef {
        source,
        object: object.into(),
        key: key.into(),
        target: target.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_refs_parse_and_bad_ones_are_refused() {
        let f = parse_file_ref(FileSource::Secret, "db/password:/run/secrets/db_password").unwrap();
        assert_eq!(
            (f.object.as_str(), f.key.as_str(), f.target.as_str()),
            ("db", "password", "/run/secrets/db_password")
        );
        for bad in [
            "db/password",
            "db:/x",
            "db/../x:/y",
            "db/p:relative",
            "db/p:/a/../b",
            "db/p:/",
            "../db/p:/x",
        ] {
            assert!(parse_file_ref(FileSource::Secret, bad).is_err(), "{bad}");
        }
    }
}
