//! `secrets` and `configs`: values of a `sec` or `cfg` object of the same
//! namespace, delivered into the container as read-only files
//! (`<object>/<key>:<container path>`). The agent writes them on a tmpfs
//! of the host and bind-mounts each file. `secrets_environment` and
//! `configs_environment` deliver values as variables (`VAR=<object>/<key>`).

use berth_model::Section;

/// Which kind of object a file comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileSource {
    Secret,
    Config,
}

impl FileSource {
    pub fn kind(self) -> berth_model::Kind {
        match self {
            FileSource::Secret => berth_model::Kind::Sec,
            FileSource::Config => berth_model::Kind::Cfg,
        }
    }
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

/// One value delivered as an environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvRef {
    pub source: FileSource,
    pub object: String,
    pub key: String,
    pub var: String,
}

/// How a running container learns of a new version of its files
/// (`secrets_reload`): restarted one instance at a time, or signalled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reload {
    #[default]
    Restart,
    Signal(i32),
}

impl Reload {
    pub fn parse(v: &str) -> Result<Reload, String> {
        match v.split_once(':') {
            None if v == "restart" => Ok(Reload::Restart),
            Some(("signal", sig)) => {
                let name = sig.trim_start_matches("SIG");
                let n = match name {
                    "HUP" => libc_sig::HUP,
                    "USR1" => libc_sig::USR1,
                    "USR2" => libc_sig::USR2,
                    "INT" => libc_sig::INT,
                    "QUIT" => libc_sig::QUIT,
                    "TERM" => libc_sig::TERM,
                    "WINCH" => libc_sig::WINCH,
                    _ => {
                        return Err(format!(
                            "{v:?}: the signal is one of HUP USR1 USR2 INT QUIT TERM WINCH"
                        ))
                    }
                };
                Ok(Reload::Signal(n))
            }
            _ => Err(format!(
                "{v:?}: write restart or signal:<name> (signal:HUP)"
            )),
        }
    }

    /// The signal's name, as docker kill takes it.
    pub fn signal_name(self) -> Option<&'static str> {
        let Reload::Signal(n) = self else { return None };
        Some(match n {
            libc_sig::HUP => "SIGHUP",
            libc_sig::USR1 => "SIGUSR1",
            libc_sig::USR2 => "SIGUSR2",
            libc_sig::INT => "SIGINT",
            libc_sig::QUIT => "SIGQUIT",
            libc_sig::TERM => "SIGTERM",
            _ => "SIGWINCH",
        })
    }
}

/// Linux signal numbers, so that this crate needs no libc.
mod libc_sig {
    pub const HUP: i32 = 1;
    pub const INT: i32 = 2;
    pub const QUIT: i32 = 3;
    pub const USR1: i32 = 10;
    pub const USR2: i32 = 12;
    pub const TERM: i32 = 15;
    pub const WINCH: i32 = 28;
}

fn object_key(word: &str, from: &str) -> Result<(String, String), String> {
    let (object, key) = from
        .split_once('/')
        .ok_or_else(|| format!("{word:?}: name the value as <object>/<key>"))?;
    if !name_ok(object) || !name_ok(key) {
        return Err(format!(
            "{word:?}: object and key names are A-Z a-z 0-9 . _ -, not . or .."
        ));
    }
    Ok((object.into(), key.into()))
}

/// Parses one `VAR=<object>/<key>` word.
pub fn parse_env_ref(source: FileSource, word: &str) -> Result<EnvRef, String> {
    let (var, from) = word
        .split_once('=')
        .ok_or_else(|| format!("{word:?}: write VAR=<object>/<key>"))?;
    let var_ok = !var.is_empty()
        && !var.starts_with(|c: char| c.is_ascii_digit())
        && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !var_ok {
        return Err(format!("{word:?}: {var:?} is no variable name"));
    }
    let (object, key) = object_key(word, from)?;
    Ok(EnvRef {
        source,
        object,
        key,
        var: var.into(),
    })
}

/// The delivery keywords of a container section, with their kind.
pub const FILE_KEYWORDS: [(&str, FileSource); 2] = [
    ("secrets", FileSource::Secret),
    ("configs", FileSource::Config),
];
pub const ENV_KEYWORDS: [(&str, FileSource); 2] = [
    ("secrets_environment", FileSource::Secret),
    ("configs_environment", FileSource::Config),
];

/// The files and variables a container section asks for.
pub fn deliveries(s: &Section) -> Result<(Vec<FileRef>, Vec<EnvRef>), String> {
    let mut files = Vec::new();
    for (kw, source) in FILE_KEYWORDS {
        for w in s.get_list(kw)? {
            files.push(parse_file_ref(source, &w).map_err(|e| format!("{kw}: {e}"))?);
        }
    }
    let mut env = Vec::new();
    for (kw, source) in ENV_KEYWORDS {
        for w in s.get_list(kw)? {
            env.push(parse_env_ref(source, &w).map_err(|e| format!("{kw}: {e}"))?);
        }
    }
    Ok((files, env))
}

/// Parses one `<object>/<key>:<container path>` word.
pub fn parse_file_ref(source: FileSource, word: &str) -> Result<FileRef, String> {
    let (from, target) = word
        .split_once(':')
        .ok_or_else(|| format!("{word:?}: write <object>/<key>:<container path>"))?;
    let (object, key) = object_key(word, from)?;
    if !target.starts_with('/') || target.split('/').any(|p| p == "..") || target == "/" {
        return Err(format!(
            "{word:?}: the container path is absolute, without .."
        ));
    }
    Ok(FileRef {
        source,
        object,
        key,
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

    #[test]
    fn env_refs_and_reload_parse() {
        let e = parse_env_ref(FileSource::Secret, "DB_PASS=db/password").unwrap();
        assert_eq!((e.var.as_str(), e.object.as_str()), ("DB_PASS", "db"));
        for bad in ["DB_PASS", "1X=db/p", "A-B=db/p", "X=db", "X=../p", "=db/p"] {
            assert!(parse_env_ref(FileSource::Secret, bad).is_err(), "{bad}");
        }
        assert_eq!(Reload::parse("restart"), Ok(Reload::Restart));
        let hup = Reload::parse("signal:HUP").unwrap();
        assert_eq!(hup.signal_name(), Some("SIGHUP"));
        assert_eq!(
            Reload::parse("signal:SIGUSR1").unwrap().signal_name(),
            Some("SIGUSR1")
        );
        for bad in ["signal:KILL", "signal", "reload", ""] {
            assert!(Reload::parse(bad).is_err(), "{bad}");
        }
    }
}
