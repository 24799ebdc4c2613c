//! Object configs: create, edit, read and delete, with all-or-nothing
//! validation and atomic writes.
//!
//! The file under `etc/` is what operators read and may edit by hand; the
//! store keeps the last valid text, which is what the agent runs.

use crate::agent::Agent;
use crate::config_file::{self, text_hash};
use crate::create_origin::Origin;
use crate::error::AgentError;
use berth_cluster::{ConfigText, ObjectOp, UserRef};
use berth_model::status::Target;
use berth_model::{
    ConfigDoc, KeywordRef, ObjectInfo, ObjectPath, Selectable, Selector, SetOutcome,
};
use berth_store::ObjectRecord;
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Candidate {
    path: ObjectPath,
    doc: Option<ConfigDoc>,
    rec: ObjectRecord,
}

impl Selectable for Candidate {
    fn object_path(&self) -> &ObjectPath {
        &self.path
    }
    fn keyword_value(&self, kw: &str) -> Option<String> {
        let r = KeywordRef::parse(kw).ok()?;
        self.doc.as_ref()?.get(&r.section, &r.key)
    }
}

/// `section.key = value` edits parsed from `--kw` words.
fn parse_assignments(kws: &[String]) -> Result<Vec<(KeywordRef, String)>, AgentError> {
    kws.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                AgentError::BadInput(format!("--kw {kv:?}: expected keyword=value"))
            })?;
            let r = KeywordRef::parse(k.trim())
                .map_err(|e| AgentError::BadInput(format!("--kw {kv:?}: {e}")))?;
            Ok((r, v.trim().to_string()))
        })
        .collect()
}

fn parse_refs(kws: &[String]) -> Result<Vec<KeywordRef>, AgentError> {
    kws.iter()
        .map(|k| {
            KeywordRef::parse(k.trim()).map_err(|e| AgentError::BadInput(format!("{k:?}: {e}")))
        })
        .collect()
}

impl Agent {
    /// Parses and validates `text` as the config of `path`; errors carry `file:line`.
    pub(crate) fn check_config(
        &self,
        path: &ObjectPath,
        text: &str,
    ) -> Result<ConfigDoc, AgentError> {
        self.check_config_from(path, text, None)
    }

    /// [`Self::check_config`], naming `origin`'s file for the lines that
    /// came from it.
    fn check_config_from(
        &self,
        path: &ObjectPath,
        text: &str,
        origin: Option<&Origin<'_>>,
    ) -> Result<ConfigDoc, AgentError> {
        let file = self.opts.home.config_file(path);
        let doc = ConfigDoc::parse(text).map_err(|e| {
            AgentError::Invalid(vec![format!(
                "{}:{}: {}",
                file.display(),
                e.line,
                e.message
            )])
        })?;
        let errs = berth_model::validate(&doc, &self.registry);
        if !errs.is_empty() {
            return Err(AgentError::Invalid(
                errs.iter()
                    .map(|e| {
                        let message = strip_line(&e.to_string()).to_string();
                        origin
                            .and_then(|o| o.locate(e, &message))
                            .unwrap_or_else(|| format!("{}:{}: {message}", file.display(), e.line))
                    })
                    .collect(),
            ));
        }
        if let Some(why) = self
            .unfit_private_daemon(path, &doc)
            .or_else(|| self.conflicting_keywords(path, &doc))
        {
            return Err(AgentError::Invalid(vec![format!(
                "{}: {why}",
                file.display()
            )]));
        }
        Ok(doc)
    }

    /// Whether the object's private daemon, if it has one, could not bind
    /// its sockets on this node.
    fn unfit_private_daemon(&self, path: &ObjectPath, doc: &ConfigDoc) -> Option<String> {
        let eff = berth_model::resolve(doc, &self.registry, path, &self.opts.nodename).ok()?;
        let id = doc.get("DEFAULT", "id").unwrap_or_default();
        let spec = crate::privd::spec(
            &self.opts.home,
            path,
            &eff,
            &id,
            self.opts.private_bridge_pool,
        )?;
        crate::privd::unfit_paths(&spec)
    }

    fn conflicting_keywords(&self, path: &ObjectPath, doc: &ConfigDoc) -> Option<String> {
        let eff = berth_model::resolve(doc, &self.registry, path, &self.opts.nodename).ok()?;
        let why = eff
            .resources_of("container")
            .find_map(berth_drivers::container_docker::conflicts);
        why
    }

    /// Objects matched by `selector`, sorted by path. No match is an error.
    pub fn select(&self, selector: &str) -> Result<Vec<ObjectInfo>, AgentError> {
        Ok(self
            .select_records(selector)?
            .into_iter()
            .map(|c| ObjectInfo {
                path: c.rec.path,
                kind: c.path.kind.as_str().to_string(),
                target: c.rec.target,
                frozen: c.rec.frozen,
            })
            .collect())
    }

    fn select_records(&self, selector: &str) -> Result<Vec<Candidate>, AgentError> {
        let sel = Selector::parse(selector).map_err(|e| AgentError::BadInput(e.to_string()))?;
        // Named objects are read one by one; only globs and keyword
        // filters scan (and parse configs only for keyword filters).
        let records = match sel.exact_paths() {
            Some(paths) => {
                let mut recs = Vec::new();
                for p in paths {
                    if let Some(rec) = self.cluster.desired().get(&p.to_string())? {
                        if !recs.iter().any(|r: &ObjectRecord| r.path == rec.path) {
                            recs.push(rec);
                        }
                    }
                }
                recs
            }
            None => self.cluster.desired().list()?,
        };
        let keywords = sel.reads_keywords();
        let all: Vec<Candidate> = records
            .into_iter()
            .filter_map(|rec| {
                let path = rec.path.parse().ok()?;
                let doc = if keywords {
                    ConfigDoc::parse(&rec.config).ok()
                } else {
                    None
                };
                Some(Candidate { path, doc, rec })
            })
            .collect();
        let mut out: Vec<Candidate> = all.into_iter().filter(|c| sel.matches(c)).collect();
        if out.is_empty() {
            return Err(AgentError::NoMatch(selector.to_string()));
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Creates an object from `kws` and an optional config text.
    pub async fn create(
        self: &Arc<Self>,
        by: &UserRef,
        path: &str,
        kws: &[String],
        config: Option<&str>,
        config_name: Option<&str>,
    ) -> Result<ObjectInfo, AgentError> {
        let name = config_name.unwrap_or("--config");
        let path: ObjectPath = path
            .parse()
            .map_err(|e: berth_model::PathError| AgentError::BadInput(e.to_string()))?;
        if path.kind == berth_model::Kind::Usr {
            return Err(AgentError::BadInput(format!(
                "{path}: users are made with `berth user create`"
            )));
        }
        let key = path.to_string();
        let _guard = self.config_locks.lock_one(&key).await;
        let file = self.opts.home.config_file(&path);
        if self.cluster.desired().get(&key)?.is_some() || file.exists() {
            return Err(AgentError::Exists(key));
        }
        let user = ConfigDoc::parse(config.unwrap_or(""))
            .map_err(|e| AgentError::Invalid(vec![format!("{name}:{}: {}", e.line, e.message)]))?;
        let assignments = parse_assignments(kws)?;
        let mut doc = user.clone();
        if doc.get("DEFAULT", "id").is_none() {
            set_checked(&mut doc, "DEFAULT", "id", &uuid::Uuid::new_v4().to_string())?;
        }
        for (r, v) in &assignments {
            set_checked(&mut doc, &r.section, &r.key, v)?;
        }
        let text = doc.render();
        let origin = Origin {
            name,
            doc: &user,
            kws: &assignments,
        };
        self.check_config_from(&path, &text, Some(&origin))?;
        let staged = crate::durable(|| config_file::stage(&file, &text))
            .map_err(|e| AgentError::write(&file, e))?;
        let rec = ObjectRecord {
            path: key.clone(),
            config: text,
            target: Target::Stopped,
            frozen: true,
            placement: Vec::new(),
            unhealthy_on: Default::default(),
        };
        // Desired state is the commit point; the file follows it.
        let create = self.cluster.create_command(by, vec![rec.clone()]);
        if let Err(e) = self.cluster.submit(create).await.map_err(AgentError::from) {
            staged.discard();
            return Err(e);
        }
        self.place_file(&key, &file, staged, &rec.config);
        self.events.emit(Some(&key), None, "created".into(), None);
        self.imon(&path);
        Ok(ObjectInfo {
            path: key,
            kind: path.kind.as_str().to_string(),
            target: rec.target,
            frozen: rec.frozen,
        })
    }

    /// Sets and unsets keywords on every selected object. All new configs
    /// are validated before any is written: one bad object writes none.
    pub async fn edit(
        self: &Arc<Self>,
        by: &UserRef,
        selector: &str,
        set: &[String],
        unset: &[String],
    ) -> Result<Vec<SetOutcome>, AgentError> {
        let assignments = parse_assignments(set)?;
        let removals = parse_refs(unset)?;
        let selected = self.select_records(selector)?;
        let _guards = self
            .config_locks
            .lock(selected.iter().map(|c| c.rec.path.clone()))
            .await;
        let mut planned = Vec::new();
        let mut errors = Vec::new();
        for mut c in selected {
            // Re-read under the lock: another edit may have landed since.
            match self.cluster.desired().get(&c.rec.path)? {
                Some(rec) => c.rec = rec,
                None => continue,
            }
            let file = self.opts.home.config_file(&c.path);
            // Edit what is on disk, so hand edits are kept; a broken file is
            // reported rather than silently replaced. A file berth wrote
            // that lags desired state (an edit made on another node, not
            // yet mirrored here) is not a hand edit: start from desired
            // state, or that edit would be undone.
            let current = match std::fs::read_to_string(&file) {
                Ok(text)
                    if text != c.rec.config
                        && written_by_berth(self, &c.rec.path, &file, &text) =>
                {
                    c.rec.config.clone()
                }
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    errors.push(format!("{}: not UTF-8 text", file.display()));
                    continue;
                }
                Err(_) => c.rec.config.clone(),
            };
            let mut doc = match ConfigDoc::parse(&current) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(format!("{}:{}: {}", file.display(), e.line, e.message));
                    continue;
                }
            };
            for (r, v) in &assignments {
                if let Err(e) = set_checked(&mut doc, &r.section, &r.key, v) {
                    errors.push(format!("{}: {e}", c.rec.path));
                }
            }
            for r in &removals {
                doc.unset(&r.section, &r.key);
            }
            let text = doc.render();
            match self.check_config(&c.path, &text) {
                Ok(_) => planned.push((c, file, text)),
                Err(AgentError::Invalid(mut e)) => errors.append(&mut e),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            return Err(AgentError::Invalid(errors));
        }
        // Stage every file first, so a full disk fails the edit before
        // anything changed; desired state is the commit point, and the
        // files follow it.
        let mut staged = Vec::new();
        for (c, file, text) in &planned {
            let on_disk = std::fs::read_to_string(file).ok();
            if *text == c.rec.config && on_disk.as_deref() == Some(text.as_str()) {
                continue;
            }
            match crate::durable(|| config_file::stage(file, text)) {
                Ok(s) => staged.push((c.rec.path.clone(), file.clone(), text, s)),
                Err(e) => {
                    for (_, _, _, s) in staged {
                        s.discard();
                    }
                    return Err(AgentError::write(file, e));
                }
            }
        }
        fault_point_before_commit();
        let texts: Vec<ConfigText> = planned
            .iter()
            .map(|(c, _, text)| ConfigText {
                path: c.rec.path.clone(),
                config: text.clone(),
            })
            .collect();
        if let Err(e) = self.submit_as(by, ObjectOp::SetConfigs(texts)).await {
            for (_, _, _, s) in staged {
                s.discard();
            }
            return Err(e);
        }
        let changed: Vec<PathBuf> = staged.iter().map(|(_, f, _, _)| f.clone()).collect();
        for (path, file, text, s) in staged {
            self.place_file(&path, &file, s, text);
        }
        let out: Vec<SetOutcome> = planned
            .iter()
            .map(|(c, file, _)| SetOutcome {
                path: c.rec.path.clone(),
                changed: changed.contains(file),
            })
            .collect();
        for o in out.iter().filter(|o| o.changed) {
            self.events
                .emit(Some(&o.path), None, "config changed".into(), None);
            if let Ok(p) = o.path.parse::<ObjectPath>() {
                self.imon(&p).wake();
            }
        }
        for (c, _, text) in &planned {
            if *text != c.rec.config {
                self.config_written(&c.rec.path, c.rec.config.clone(), by);
            }
        }
        Ok(out)
    }

    /// After a config change: a baseline version, and with update=rolling
    /// the rollout, in the background (`berth_cluster::Cluster::config_written`).
    fn config_written(self: &Arc<Self>, path: &str, old: String, by: &UserRef) {
        let Ok(p) = path.parse::<ObjectPath>() else {
            return;
        };
        let (cluster, by, events) = (self.cluster.clone(), by.clone(), self.events.clone());
        tokio::spawn(async move {
            if let Err(e) = cluster.config_written(&p, &old, &by).await {
                events.emit(Some(&p.to_string()), None, format!("deploy: {e}"), None);
            }
        });
    }

    /// Puts a staged config file in place once desired state holds its
    /// text. A failure here loses nothing: the next pass of the object's
    /// monitor writes the file from desired state.
    fn place_file(&self, key: &str, file: &Path, staged: config_file::Staged, text: &str) {
        match crate::durable(|| staged.commit()) {
            Ok(true) => {}
            Ok(false) => {
                let _ = crate::durable(|| self.store.mirror_set(key, Some(text_hash(text))));
            }
            Err(e) => self.events.emit(
                Some(key),
                None,
                format!(
                    "writing {}: {e} (desired state has the change; the file follows on the next pass)",
                    file.display()
                ),
                None,
            ),
        }
    }

    /// The config file as on disk (what `print config` shows).
    pub fn config_text(&self, path: &str) -> Result<String, AgentError> {
        let (p, rec) = self.record(path)?;
        Ok(std::fs::read_to_string(self.opts.home.config_file(&p)).unwrap_or(rec.config))
    }

    /// A keyword's raw value, or its effective value with `eval`.
    pub fn get_keyword(
        &self,
        path: &str,
        kw: &str,
        eval: bool,
    ) -> Result<Option<String>, AgentError> {
        let (p, rec) = self.record(path)?;
        let r = KeywordRef::parse(kw).map_err(|e| AgentError::BadInput(e.to_string()))?;
        let doc = ConfigDoc::parse(&rec.config).map_err(|e| AgentError::BadInput(e.to_string()))?;
        if !eval {
            return Ok(doc.get(&r.section, &r.key));
        }
        let eff = berth_model::resolve(&doc, &self.registry, &p, self.nodename())
            .map_err(|errs| AgentError::Invalid(errs.iter().map(|e| e.to_string()).collect()))?;
        Ok(eff.get(&r.section, r.base_key()).map(str::to_string))
    }

    fn record(&self, path: &str) -> Result<(ObjectPath, ObjectRecord), AgentError> {
        let p: ObjectPath = path
            .parse()
            .map_err(|e: berth_model::PathError| AgentError::BadInput(e.to_string()))?;
        let rec = self
            .cluster
            .desired()
            .get(&p.to_string())?
            .ok_or_else(|| AgentError::NotFound(p.to_string()))?;
        Ok((p, rec))
    }
}

/// Crash-test hook: with `BERTH_FAULT_COMMIT_DELAY_MS` set, an edit waits
/// that long between staging its files and renaming them, so a test can
/// SIGKILL the daemon inside the window deterministically. Unset in normal
/// operation, where it costs one environment lookup per edit.
fn fault_point_before_commit() {
    if let Some(ms) = std::env::var("BERTH_FAULT_COMMIT_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        crate::durable(|| std::thread::sleep(std::time::Duration::from_millis(ms)));
    }
}

fn set_checked(
    doc: &mut ConfigDoc,
    section: &str,
    key: &str,
    value: &str,
) -> Result<(), AgentError> {
    doc.try_set(section, key, value)
        .map_err(|e| AgentError::BadInput(format!("{section}.{key}: {e}")))
}

/// `ConfigError`'s Display starts with `line N: `; the caller prefixes `file:N:`.
fn strip_line(s: &str) -> &str {
    match s.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => s,
    }
}

/// Keeps the object's config file and its desired config in step. A file
/// still holding what berth last wrote follows desired state (an edit made
/// on another node, or a file this node never had); a file edited by hand
/// is applied if it is valid. Returns the problem to show in status when
/// it is not.
pub(crate) async fn sync_file(agent: &Arc<Agent>, path: &ObjectPath) -> Option<String> {
    let file = agent.opts.home.config_file(path);
    // Under the lock: a concurrent `set` must not be undone by a read of
    // the file taken just before it wrote.
    let key = path.to_string();
    let _guard = agent.config_locks.lock_one(&key).await;
    let rec = agent.cluster.desired().get(&key).ok()??;
    let on_disk = std::fs::read_to_string(&file).ok();
    let ours = |text: &str| written_by_berth(agent, &key, &file, text);
    let follow_desired = match &on_disk {
        None => true,
        Some(text) if *text == rec.config => {
            if !ours(text) {
                mark(agent, &key, &file, text);
            }
            return None;
        }
        Some(text) => ours(text),
    };
    if follow_desired {
        let written = crate::durable(|| config_file::write(&file, &rec.config));
        return match written {
            Ok(true) => None,
            Ok(false) => {
                mark(agent, &key, &file, &rec.config);
                None
            }
            Err(e) => Some(format!("writing {}: {e}", file.display())),
        };
    }
    let text = on_disk.unwrap_or_default();
    match agent.check_config(path, &text) {
        Ok(_) => {
            let updated = agent
                .submit(ObjectOp::SetConfigs(vec![ConfigText {
                    path: key.clone(),
                    config: text.clone(),
                }]))
                .await;
            if let Err(e) = updated {
                return Some(format!("store: {e}"));
            }
            mark(agent, &key, &file, &text);
            agent.events.emit(
                Some(&key),
                None,
                "config file edited by hand: applied".into(),
                None,
            );
            None
        }
        Err(e) => Some(format!(
            "config file edited into an invalid state, not applied (running the last valid config): {e}"
        )),
    }
}

/// Whether berth wrote `text`, read from `file`: the file's mark, or for
/// an unmarked file (no xattr support, or written by an older berth) the
/// mirror table.
fn written_by_berth(agent: &Agent, key: &str, file: &Path, text: &str) -> bool {
    match config_file::mark_of(file) {
        Some(h) => h == text_hash(text),
        None => agent.store.mirror_get(key).ok().flatten() == Some(text_hash(text)),
    }
}

/// Records that the file holding `text` is berth's: its mark, or where
/// extended attributes are missing, the mirror table.
fn mark(agent: &Agent, key: &str, file: &Path, text: &str) {
    if !config_file::mark_in_place(file, text) {
        let _ = crate::durable(|| agent.store.mirror_set(key, Some(text_hash(text))));
    }
}

/// Forgets an object deleted elsewhere: its config file and mirror entry.
pub(crate) async fn forget_file(agent: &Arc<Agent>, path: &ObjectPath) {
    let file = agent.opts.home.config_file(path);
    let _ = std::fs::remove_file(&file);
    let _ = crate::durable(|| agent.store.mirror_set(&path.to_string(), None));
}

/// Removes the object's config file and record.
pub(crate) async fn remove_object(
    agent: &Arc<Agent>,
    path: &ObjectPath,
    imon_id: u64,
    by: &UserRef,
) -> Result<(), AgentError> {
    let _guard = agent.config_locks.lock_one(&path.to_string()).await;
    let file = agent.opts.home.config_file(path);
    match std::fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    agent.cluster.secret_forget(by, path).await?;
    agent
        .submit_as(
            by,
            ObjectOp::Delete {
                path: path.to_string(),
            },
        )
        .await?;
    let _ = crate::durable(|| agent.store.mirror_set(&path.to_string(), None));
    // Under the lock, so a create right after the delete gets a new monitor.
    agent.forget_imon(&path.to_string(), imon_id);
    Ok(())
}
