//! Rolling deploys (`berth <svc> deploy`, `rollback`; design note:
//! `design/rollout.md`). A deploy records the service's config as a new
//! version, then replaces the instances that run an older container spec,
//! `update_parallelism` nodes at a time: each a drained stop and a start
//! from the current config (the instance monitor's `restart`), stop-first,
//! then a health gate that the new instance must pass before the next
//! batch. A failed gate rolls the whole service back to the previous
//! deployed version, or pauses, as `update_failure_action` says.

use crate::command::{Authorizer, Command, ConfigText, ObjectOp, UserRef};
use crate::{Cluster, ClusterError};
use berth_model::cluster::InstanceReport;
use berth_model::deploy::{
    batches, gate, DeployHistory, DeployVersion, FailureAction, Gate, Outcome, UpdateOrder,
    UpdatePolicy,
};
use berth_model::status::Target;
use berth_model::{ActionKind, ActionOutcome, ObjectPath};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a new instance may take to come up and pass its check, on
/// top of `update_monitor`.
const START_WAIT: Duration = Duration::from_secs(60);
/// How often the gate looks at the instance.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// Another node's report is trusted only once a heartbeat sent after its
/// restart can have arrived.
const REPORT_LAG: Duration = Duration::from_millis(1500);
/// How long a deploy waits for every node to report on the current config.
const FRESH_REPORT_WAIT: Duration = Duration::from_secs(10);
/// How often the leader looks for a deploy left in progress.
const RESUME_EVERY: Duration = Duration::from_secs(5);

/// `deploy`'s options over the `update_*` keywords.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct DeployArgs {
    pub parallelism: Option<u32>,
    pub delay: Option<Duration>,
    pub order: Option<UpdateOrder>,
    /// A rollback: the digests that version pinned, not the tags' now.
    pub pins_of: Option<u64>,
}

/// What a rollout replaces, how, and for whom.
#[derive(Clone, Copy)]
struct Rollout<'a> {
    path: &'a ObjectPath,
    todo: &'a [String],
    policy: &'a UpdatePolicy,
    by: &'a UserRef,
}

/// How long a forwarded deploy may take on the leader.
const FORWARD_TTL: Duration = Duration::from_secs(3600);

pub fn deploy_key(path: &str) -> String {
    format!("deploy/{path}")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why a rollout stopped.
struct Failed(String);

impl Cluster {
    /// The versions `path` deployed, oldest first.
    pub fn deploy_history(&self, path: &str) -> Result<DeployHistory, ClusterError> {
        Ok(self
            .desired
            .get_json::<DeployHistory>(&deploy_key(path))?
            .unwrap_or_default())
    }

    async fn record_version(
        &self,
        path: &str,
        by: &UserRef,
        history: &mut DeployHistory,
        v: DeployVersion,
    ) -> Result<(), ClusterError> {
        history.record(v);
        self.submit(Command::Object {
            by: by.clone(),
            op: ObjectOp::Deployed {
                path: path.to_string(),
                history: history.clone(),
            },
        })
        .await
        .map(|_| ())
    }

    /// The leader's side of a deploy asked on another node: run as the
    /// same user, whose rights the commands it submits are checked
    /// against, with where it came from in the audit trail.
    pub(crate) async fn forwarded_deploy(
        self: &Arc<Self>,
        d: crate::records::ForwardedDeploy,
    ) -> Result<ActionOutcome, ClusterError> {
        let path: ObjectPath = d
            .path
            .parse()
            .map_err(|e| ClusterError::BadInput(format!("{e}")))?;
        if !self.desired.is_leader() {
            return Err(ClusterError::NoLeader(Some(
                "this node is not the leader; retry".into(),
            )));
        }
        // Checked before anything runs (the pins reach out to registries);
        // each command the rollout submits is checked again.
        let may = ObjectOp::Deployed {
            path: d.path.clone(),
            history: Default::default(),
        };
        self.authorizer.object(&d.by, &may)?;
        self.desired
            .catch_up(d.applied, Duration::from_secs(10))
            .await;
        let from = d.by.source.clone().unwrap_or_else(|| "remote api".into());
        let by = UserRef {
            node: self.nodename().to_string(),
            source: Some(format!("{from} on {}, forwarded", d.by.node)),
            ..d.by
        };
        self.deploy(&path, d.args, &by).await
    }

    /// Rolls the current config out to every instance that runs an older
    /// container spec.
    pub async fn deploy(
        self: &Arc<Self>,
        path: &ObjectPath,
        args: DeployArgs,
        by: &UserRef,
    ) -> Result<ActionOutcome, ClusterError> {
        let key = path.to_string();
        if self.is_clustered() && !self.desired.is_leader() {
            // The gate reads every node's instance reports, which the
            // leader gathers.
            let fwd = crate::records::ForwardedDeploy {
                path: key,
                args,
                by: by.clone(),
                applied: self.desired.applied_index(),
            };
            let leader = self.leader_addr()?;
            return self
                .call_within(&leader, crate::server::PATH_DEPLOY, &fwd, FORWARD_TTL)
                .await;
        }
        let lock = self
            .deploy_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        // A deploy written while another runs waits for it, then rolls out
        // what is current by then.
        let _one_at_a_time = lock.lock().await;
        let rec = self
            .desired
            .get(&key)?
            .ok_or_else(|| ClusterError::NotFound(format!("{key}: no such object")))?;
        let local = self.local()?.clone();
        let settings = local
            .settings(path, &rec.config)
            .ok_or_else(|| ClusterError::BadInput(format!("{key}: its config does not resolve")))?;
        let policy = policy_with(settings.update, args, settings.is_failover(), &key)?;
        let mut history = self.deploy_history(&key)?;
        let nodes = self.instance_nodes(&rec);
        let todo = self.stale_nodes(&key, &rec.config, &nodes).await;
        let same_text = history.current().is_some_and(|v| v.config == rec.config);
        if todo.is_empty() && same_text {
            let v = history.current().map_or(0, |v| v.version);
            return Ok(said(
                &key,
                format!("nothing to deploy: version {v} runs everywhere"),
            ));
        }
        let (mut v, resumed) = self
            .open_version(path, &rec.config, args, by, &mut history)
            .await?;
        let version = v.version;
        if rec.target != Target::Started || (todo.is_empty() && !resumed) {
            v.outcome = Outcome::Deployed;
            let why = if rec.target != Target::Started {
                "not started: its next start runs it"
            } else {
                "no container changed"
            };
            v.log.push(why.to_string());
            self.record_version(&key, by, &mut history, v).await?;
            return Ok(said(&key, format!("version {version} recorded ({why})")));
        }
        self.record_version(&key, by, &mut history, v.clone())
            .await?;
        self.emit_for(
            &key,
            format!("deploy: version {version} to {}", todo.join(", ")),
        );
        let rolled = if todo.is_empty() {
            // Resumed with every instance replaced already: the gate only.
            self.gate_nodes(&key, &nodes, policy.monitor, Instant::now(), &mut v.log)
                .await
        } else {
            self.roll(path, &todo, &policy, by, &mut v.log).await
        };
        let Err(Failed(why)) = rolled else {
            v.outcome = Outcome::Deployed;
            v.log.push("deployed".into());
            self.record_version(&key, by, &mut history, v.clone())
                .await?;
            self.emit_for(&key, format!("deploy: version {version} deployed"));
            return Ok(outcome(&key, true, None, v.log));
        };
        self.emit_for(&key, format!("deploy: version {version} failed: {why}"));
        let error = self
            .fail(
                Rollout {
                    path,
                    todo: &todo,
                    policy: &policy,
                    by,
                },
                &history,
                &mut v,
                &why,
            )
            .await?;
        self.record_version(&key, by, &mut history, v.clone())
            .await?;
        Ok(outcome(&key, false, Some(error), v.log))
    }

    /// The version this deploy writes: the one left in progress for this
    /// very config (its digests kept), or a new one with the images
    /// pinned now (a rollback's with the digests of the version it returns
    /// to). A version left in progress for another config is over.
    async fn open_version(
        &self,
        path: &ObjectPath,
        config: &str,
        args: DeployArgs,
        by: &UserRef,
        history: &mut DeployHistory,
    ) -> Result<(DeployVersion, bool), ClusterError> {
        let key = path.to_string();
        if let Some(last) = history.versions.last().cloned() {
            if last.outcome == Outcome::InProgress && last.config != config {
                let mut over = last;
                over.outcome = Outcome::Paused {
                    why: "interrupted, and superseded by a newer config".into(),
                };
                self.record_version(&key, by, history, over).await?;
            }
        }
        if let Some(mut v) = history
            .versions
            .last()
            .filter(|v| v.outcome == Outcome::InProgress)
            .cloned()
        {
            v.log.push(format!("resumed by {by}"));
            return Ok((v, true));
        }
        let mut v = DeployVersion {
            version: history.next_version(),
            config: config.to_string(),
            by: by.to_string(),
            at_ms: now_ms(),
            digests: Default::default(),
            outcome: Outcome::InProgress,
            log: Vec::new(),
        };
        let earlier = args
            .pins_of
            .and_then(|n| history.get(n))
            .filter(|e| !e.digests.is_empty());
        if let Some(e) = earlier {
            v.digests = e.digests.clone();
            v.log
                .push(format!("the digests version {} pinned", e.version));
        } else {
            let (pins, notes) = self.local()?.image_digests(path, config).await;
            v.digests = pins;
            v.log.extend(notes);
        }
        Ok((v, false))
    }

    /// After a failed gate: back to the previous deployed version, or a
    /// pause, as `update_failure_action` says. Returns the error to report.
    async fn fail(
        self: &Arc<Self>,
        r: Rollout<'_>,
        history: &DeployHistory,
        v: &mut DeployVersion,
        why: &str,
    ) -> Result<String, ClusterError> {
        let Rollout {
            path,
            todo,
            policy,
            by,
        } = r;
        let key = path.to_string();
        let version = v.version;
        let previous = history.before(version).cloned();
        Ok(match (policy.failure, previous) {
            (FailureAction::Rollback, Some(prev)) => {
                v.log
                    .push(format!("rolling back to version {}", prev.version));
                self.set_config(&key, &prev.config, by).await?;
                let back = self.roll(path, todo, policy, by, &mut v.log).await;
                v.outcome = Outcome::RolledBack {
                    why: why.to_string(),
                };
                if let Err(Failed(also)) = back {
                    v.log.push(format!("the rollback failed too: {also}"));
                }
                self.emit_for(
                    &key,
                    format!("deploy: version {version} rolled back to {}", prev.version),
                );
                format!("{why}; rolled back to version {}", prev.version)
            }
            (FailureAction::Rollback, None) => {
                v.log
                    .push("no earlier deployed version to roll back to: paused".into());
                v.outcome = Outcome::Paused {
                    why: why.to_string(),
                };
                format!("{why}; paused (no earlier version to roll back to)")
            }
            (FailureAction::Pause, _) => {
                v.outcome = Outcome::Paused {
                    why: why.to_string(),
                };
                format!("{why}; paused (update_failure_action=pause)")
            }
        })
    }

    /// A config change of `path` was written over `old`. The first change
    /// of a started service's container spec records `old` as version 1
    /// (what a rollback returns to); with `update=rolling` the change is
    /// deployed at once.
    pub async fn config_written(
        self: &Arc<Self>,
        path: &ObjectPath,
        old: &str,
        by: &UserRef,
    ) -> Result<(), ClusterError> {
        let key = path.to_string();
        let Some(rec) = self.desired.get(&key)? else {
            return Ok(());
        };
        let local = self.local()?.clone();
        let (Ok(before), Ok(after)) = (
            local.spec_fingerprints(path, old),
            local.spec_fingerprints(path, &rec.config),
        ) else {
            return Ok(());
        };
        if before == after || rec.target != Target::Started {
            return Ok(());
        }
        let mut history = self.deploy_history(&key)?;
        if history.current().is_none() {
            let (digests, mut log) = local.image_digests(path, old).await;
            log.insert(
                0,
                "the config its instances ran before its first deploy".into(),
            );
            let v = DeployVersion {
                version: history.next_version(),
                config: old.to_string(),
                by: by.to_string(),
                at_ms: now_ms(),
                digests,
                outcome: Outcome::Deployed,
                log,
            };
            self.record_version(&key, by, &mut history, v).await?;
        }
        let rolling = local
            .settings(path, &rec.config)
            .is_some_and(|s| s.update.mode == berth_model::deploy::UpdateMode::Rolling);
        if rolling {
            let out = self.deploy(path, DeployArgs::default(), by).await?;
            if !out.ok {
                tracing::warn!("{key}: rolling update: {}", out.error.unwrap_or_default());
            }
        }
        Ok(())
    }

    /// `rollback`: back to the deployed version before the current one.
    pub async fn rollback(
        self: &Arc<Self>,
        path: &ObjectPath,
        by: &UserRef,
    ) -> Result<ActionOutcome, ClusterError> {
        let key = path.to_string();
        let history = self.deploy_history(&key)?;
        let current = history.current().ok_or_else(|| {
            ClusterError::BadInput(format!(
                "{key}: no deployed version yet: nothing to roll back to"
            ))
        })?;
        let prev = history.before(current.version).ok_or_else(|| {
            ClusterError::BadInput(format!(
                "{key}: version {} is the only deployed version: nothing to roll back to",
                current.version
            ))
        })?;
        self.set_config(&key, &prev.config, by).await?;
        let args = DeployArgs {
            pins_of: Some(prev.version),
            ..Default::default()
        };
        let mut out = self.deploy(path, args, by).await?;
        out.lines.insert(
            0,
            format!("rollback to the config of version {}", prev.version),
        );
        Ok(out)
    }

    async fn set_config(&self, key: &str, config: &str, by: &UserRef) -> Result<(), ClusterError> {
        self.submit(Command::Object {
            by: by.clone(),
            op: ObjectOp::SetConfigs(vec![ConfigText {
                path: key.to_string(),
                config: config.to_string(),
            }]),
        })
        .await
        .map(|_| ())
    }

    /// The nodes whose instance of `key` runs an older container spec
    /// than `config`, by their reports. A report made before the config
    /// changed says nothing yet: it is awaited a while, then its node
    /// counts as needing the update.
    async fn stale_nodes(&self, key: &str, config: &str, nodes: &[String]) -> Vec<String> {
        let want = berth_model::fnv1a64(config.as_bytes());
        let deadline = Instant::now() + FRESH_REPORT_WAIT;
        loop {
            let reports = self.instance_reports();
            let fresh = |n: &String| report(&reports, n, key).filter(|r| r.config_hash == want);
            if nodes.iter().all(|n| fresh(n).is_some()) || Instant::now() > deadline {
                return nodes
                    .iter()
                    .filter(|n| fresh(n).is_none_or(|r| r.stale))
                    .cloned()
                    .collect();
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    /// Where the object's instances run: its placement, or this node.
    fn instance_nodes(&self, rec: &berth_store::ObjectRecord) -> Vec<String> {
        if rec.placement.is_empty() || !self.is_clustered() {
            vec![self.nodename().to_string()]
        } else {
            rec.placement.clone()
        }
    }

    async fn roll(
        self: &Arc<Self>,
        path: &ObjectPath,
        nodes: &[String],
        policy: &UpdatePolicy,
        by: &UserRef,
        log: &mut Vec<String>,
    ) -> Result<(), Failed> {
        let key = path.to_string();
        let all = batches(nodes, policy.parallelism);
        for (i, batch) in all.iter().enumerate() {
            if i > 0 && !policy.delay.is_zero() {
                tokio::time::sleep(policy.delay).await;
            }
            log.push(format!("batch {}: {}", i + 1, batch.join(", ")));
            let kind = match policy.order {
                UpdateOrder::StopFirst => ActionKind::Restart,
                UpdateOrder::StartFirst => ActionKind::Replace,
            };
            let restarts = batch.iter().map(|n| self.replace_on(n, path, kind, by));
            let outs = futures_util::future::join_all(restarts).await;
            let done = Instant::now();
            for (node, out) in batch.iter().zip(outs) {
                if !out.ok {
                    let why = format!(
                        "the instance on {node} failed to start: {}",
                        out.error.unwrap_or_default()
                    );
                    log.push(why.clone());
                    return Err(Failed(why));
                }
            }
            self.gate_nodes(&key, batch, policy.monitor, done, log)
                .await?;
        }
        Ok(())
    }

    async fn gate_nodes(
        &self,
        key: &str,
        nodes: &[String],
        monitor: Duration,
        since: Instant,
        log: &mut Vec<String>,
    ) -> Result<(), Failed> {
        let gates = nodes
            .iter()
            .map(|n| self.health_gate(n, key, monitor, since));
        for r in futures_util::future::join_all(gates).await {
            if let Err(why) = r {
                log.push(why.clone());
                return Err(Failed(why));
            }
        }
        Ok(())
    }

    /// Replaces `node`'s instance: `Restart` (stop-first) or `Replace`
    /// (start-first).
    async fn replace_on(
        &self,
        node: &str,
        path: &ObjectPath,
        kind: ActionKind,
        by: &UserRef,
    ) -> ActionOutcome {
        let key = path.to_string();
        if node == self.nodename() {
            match self.local() {
                Ok(l) => l.act(path.clone(), kind, by.clone()).await,
                Err(e) => ActionOutcome::failed(&key, e),
            }
        } else {
            self.remote(node, &key, kind, by)
                .await
                .unwrap_or_else(|e| ActionOutcome::failed(&key, e))
        }
    }

    /// Waits until `node`'s new instance of `key` is up, on the current
    /// config and healthy, then watches it for `monitor`.
    async fn health_gate(
        &self,
        node: &str,
        key: &str,
        monitor: Duration,
        started: Instant,
    ) -> Result<(), String> {
        let remote = node != self.nodename();
        let deadline = started + START_WAIT + monitor;
        let mut good_since: Option<Instant> = None;
        loop {
            tokio::time::sleep(LOOK_EVERY).await;
            if remote && started.elapsed() < REPORT_LAG {
                continue;
            }
            let reports = self.instance_reports();
            let Some(r) = report(&reports, node, key) else {
                if Instant::now() > deadline {
                    return Err(format!("{key} on {node}: no report of the new instance"));
                }
                continue;
            };
            match gate(r.avail, r.stale, r.failed, r.health) {
                Gate::Bad => return Err(bad_why(key, node, r)),
                Gate::Good => {
                    let since = *good_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= monitor {
                        return Ok(());
                    }
                }
                Gate::Waiting => {
                    good_since = None;
                    if Instant::now() > deadline {
                        return Err(format!(
                            "{key} on {node}: not up and healthy within {:?}",
                            START_WAIT + monitor
                        ));
                    }
                }
            }
        }
    }

    fn emit_for(&self, key: &str, what: String) {
        self.events.emit(Some(key), None, what, None);
    }
}

/// On the leader: a version left in progress (the node that ran its deploy
/// restarted, or lost the leadership) is deployed again, to its end.
/// Instances already on it are not touched: only stale ones are replaced.
pub(crate) async fn resume(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(RESUME_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !cluster.desired.is_leader() {
            continue;
        }
        let Ok(all) = cluster.desired.scan_raw("deploy/") else {
            continue;
        };
        for (k, text) in all {
            let Some(path) = k.strip_prefix("deploy/") else {
                continue;
            };
            let in_progress = serde_json::from_str::<DeployHistory>(&text)
                .ok()
                .and_then(|h| h.versions.last().map(|v| v.outcome == Outcome::InProgress))
                .unwrap_or(false);
            let busy = cluster
                .deploy_locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(path)
                .is_some_and(|l| l.try_lock().is_err());
            let Ok(p) = path.parse::<ObjectPath>() else {
                continue;
            };
            if !in_progress || busy {
                continue;
            }
            let c = cluster.clone();
            tokio::spawn(async move {
                let by = c.local_user();
                c.emit_for(
                    &p.to_string(),
                    "deploy: resuming a rollout left in progress".into(),
                );
                if let Err(e) = c.deploy(&p, DeployArgs::default(), &by).await {
                    c.emit_for(&p.to_string(), format!("deploy: resuming: {e}"));
                }
            });
        }
    }
}

fn bad_why(key: &str, node: &str, r: &InstanceReport) -> String {
    let what = if r.failed {
        "failed (restart budget spent)".to_string()
    } else if r.health == Some(berth_model::health::HealthState::Unhealthy) {
        "unhealthy".to_string()
    } else {
        format!("{}", r.avail)
    };
    match &r.why {
        Some(w) if !w.is_empty() => format!("{key} on {node}: {what}: {w}"),
        _ => format!("{key} on {node}: {what}"),
    }
}

fn report<'a>(
    reports: &'a std::collections::BTreeMap<String, Vec<InstanceReport>>,
    node: &str,
    key: &str,
) -> Option<&'a InstanceReport> {
    reports.get(node)?.iter().find(|i| i.path == key)
}

fn policy_with(
    mut p: UpdatePolicy,
    args: DeployArgs,
    failover: bool,
    key: &str,
) -> Result<UpdatePolicy, ClusterError> {
    if let Some(n) = args.parallelism {
        if n == 0 {
            return Err(ClusterError::BadInput(
                "--parallelism must be 1 or more".into(),
            ));
        }
        p.parallelism = n;
    }
    if let Some(d) = args.delay {
        p.delay = d;
    }
    if let Some(o) = args.order {
        p.order = o;
    }
    if p.order == UpdateOrder::StartFirst && failover {
        return Err(ClusterError::BadInput(format!(
            "{key}: a failover service never runs twice: its updates are stop-first"
        )));
    }
    Ok(p)
}

fn said(key: &str, line: String) -> ActionOutcome {
    outcome(key, true, None, vec![line])
}

fn outcome(key: &str, ok: bool, error: Option<String>, lines: Vec<String>) -> ActionOutcome {
    ActionOutcome {
        path: key.to_string(),
        ok,
        error,
        lines,
    }
}
