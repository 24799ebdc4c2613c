//! Building the object's observed status from Docker and the monitor's memory.

use super::Imon;
use berth_drivers::volume::VolumeSpec;
use berth_engine::Engine;
use berth_model::status::{Avail, ObjectStatus, ResourceStatus, Target};
use berth_store::ObjectRecord;
use std::collections::HashMap;

/// What Docker said about each resource at the last probe, on one engine:
/// rid -> (what was asked: a container name or volume label, the answer).
/// A pass woken only by a desired-state change reuses the answers for
/// resources that are still the same thing; Docker events, the resync
/// tick, restarts and any Docker action of the monitor force a new probe.
pub(crate) struct Probed {
    socket: String,
    answers: HashMap<String, (String, Answer)>,
}

/// (availability, problem, container id, Docker's health word and the
/// output of its last run).
type Answer = (Avail, String, Option<String>, Option<DockerHealth>);
type DockerHealth = (String, Option<String>);

/// What the object's engine could tell, before looking at resources.
enum Probe {
    Engine(Engine),
    /// No engine to ask: every resource gets this availability and reason.
    Problem(Avail, String),
}

impl Imon {
    /// Rebuilds the status; with `probe` false, Docker is asked only about
    /// resources the last probe did not cover.
    pub(crate) async fn refresh_status(&mut self, rec: &ObjectRecord, probe: bool) {
        let ttl = self.agent.opts.warn_ttl;
        self.obj_log.expire(ttl);
        for r in self.res.values_mut() {
            r.log.expire(ttl);
        }
        let mut log: Vec<String> = self.obj_log.lines().cloned().collect();
        if let Some(e) = &self.config_error {
            log.push(e.clone());
        }
        log.extend(self.held.clone());
        let mut status = ObjectStatus {
            path: self.key.clone(),
            node: self.agent.nodename().to_string(),
            avail: Avail::NotApplicable,
            frozen: rec.frozen,
            target: rec.target,
            topology: berth_model::Topology::Failover,
            orchestrate: berth_model::Orchestrate::No,
            log,
            resources: Vec::new(),
            docker_socket: None,
            placement: rec.placement.clone(),
        };
        let r = match self.resolve(rec) {
            Ok(r) => r,
            Err(e) => {
                status.avail = Avail::Warn;
                status.log.push(e);
                self.publish(status);
                // Docker was not asked: the next status must ask it.
                self.probed = None;
                return;
            }
        };
        status.topology = r.settings.topology;
        status.orchestrate = r.settings.orchestrate;
        status.docker_socket = Some(match &r.private {
            Some(p) => p.socket.display().to_string(),
            None => self.agent.opts.host_docker_socket.clone(),
        });
        let engine = match self.engine(&r, false).await {
            Ok(Some(e)) => Probe::Engine(e),
            Ok(None) if rec.target == Target::Started => {
                Probe::Problem(Avail::Down, "private docker daemon is not running".into())
            }
            Ok(None) => Probe::Problem(Avail::Down, String::new()),
            Err(e) => Probe::Problem(Avail::Warn, e),
        };
        let socket = status.docker_socket.clone().unwrap_or_default();
        let previous = match self.probed.take() {
            Some(p) if !probe && p.socket == socket => p.answers,
            _ => HashMap::new(),
        };
        let known = |rid: &str, what: &str| -> Option<Answer> {
            match previous.get(rid) {
                Some((w, a)) if w == what => Some(a.clone()),
                _ => None,
            }
        };
        let mut answers = HashMap::new();
        for (rid, vol) in &r.volumes {
            let rtype = match vol {
                VolumeSpec::Docker { .. } => "volume.docker",
                VolumeSpec::Directory { .. } => "volume.directory",
            };
            let label = vol.label();
            let (avail, problem, _, _) = match (&engine, known(rid, &label)) {
                (Probe::Problem(a, p), _) => (*a, p.clone(), None, None),
                (Probe::Engine(_), Some(a)) => a,
                (Probe::Engine(e), None) => match vol.exists(e).await {
                    Ok(true) => (Avail::Up, String::new(), None, None),
                    Ok(false) => (Avail::Down, String::new(), None, None),
                    Err(err) => (Avail::Warn, err.to_string(), None, None),
                },
            };
            answers.insert(
                rid.clone(),
                (label.clone(), (avail, problem.clone(), None, None)),
            );
            let rs = self.resource_status(rid, rtype, label, avail, problem, None);
            status.resources.push(rs);
        }
        for c in &r.containers {
            let (avail, problem, id, docker) = match (&engine, known(&c.rid, &c.spec.name)) {
                (Probe::Problem(a, p), _) => (*a, p.clone(), None, None),
                (Probe::Engine(_), Some(a)) => a,
                (Probe::Engine(e), None) => match e.inspect(&c.spec.name).await {
                    Ok(Some(cur)) if cur.state.running => {
                        let h = cur.state.health.map(|w| (w, cur.state.health_output));
                        (Avail::Up, String::new(), Some(cur.id), h)
                    }
                    Ok(Some(cur)) => (Avail::Down, String::new(), Some(cur.id), None),
                    Ok(None) => (Avail::Down, String::new(), None, None),
                    Err(err) => (Avail::Warn, err.to_string(), None, None),
                },
            };
            answers.insert(
                c.rid.clone(),
                (
                    c.spec.name.clone(),
                    (avail, problem.clone(), id.clone(), docker.clone()),
                ),
            );
            let up_id = id.as_deref().filter(|_| avail == Avail::Up);
            let on = match &engine {
                Probe::Engine(e) => Some(e),
                Probe::Problem(..) => None,
            };
            let docker = docker.as_ref().map(|(w, o)| (w.as_str(), o.as_deref()));
            let health = self.track_health(c, on, up_id, docker);
            if avail == Avail::Up && (!c.files.is_empty() || !c.env_values.is_empty()) {
                let st = self.res.entry(c.rid.clone()).or_default();
                if st.values.is_empty() {
                    // After an agent restart: the container's tmpfs knows.
                    st.values =
                        crate::files::held_versions(&self.agent, &c.spec.name).unwrap_or_default();
                }
            }
            let mut rs =
                self.resource_status(&c.rid, "container.docker", c.label(), avail, problem, id);
            rs.service = Some(c.service.clone());
            // Running but unhealthy: up, with a warning `mon` shows.
            if rs.avail == Avail::Up
                && health
                    .as_ref()
                    .is_some_and(|h| h.state == berth_model::health::HealthState::Unhealthy)
            {
                rs.avail = Avail::Warn;
            }
            rs.health = health;
            status.resources.push(rs);
        }
        // A Docker error is asked again next time rather than remembered.
        if matches!(engine, Probe::Engine(_))
            && answers.values().all(|(_, (a, _, _, _))| *a != Avail::Warn)
        {
            self.probed = Some(Probed { socket, answers });
        }
        status.avail = Avail::aggregate(status.resources.iter().map(|r| r.avail));
        self.publish(status);
    }

    /// One resource's status: what Docker says, plus what the monitor remembers.
    fn resource_status(
        &mut self,
        rid: &str,
        rtype: &str,
        label: String,
        avail: Avail,
        problem: String,
        container_id: Option<String>,
    ) -> ResourceStatus {
        let st = self.res.entry(rid.to_string()).or_default();
        let mut log: Vec<String> = st.log.lines().cloned().collect();
        if !problem.is_empty() {
            log.push(problem);
        }
        ResourceStatus {
            rid: rid.to_string(),
            rtype: rtype.to_string(),
            label,
            avail,
            failed: st.failed,
            log,
            container_id,
            restarts: st.restarts,
            service: None,
            draining: st.draining,
            values: st.values.clone(),
            health: None,
            config_changed: st.stale && avail != Avail::Down,
        }
    }

    fn publish(&self, status: ObjectStatus) {
        self.agent.status.publish_instance(status);
    }
}
