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

/// What Docker said about one resource.
#[derive(Clone)]
struct Answer {
    avail: Avail,
    problem: String,
    /// The container's id.
    id: Option<String>,
    /// Docker's health word and the output of its last run.
    health: Option<(String, Option<String>)>,
    /// The image reference the container was created from (a pinned
    /// digest after a deploy).
    image: Option<String>,
}

impl Answer {
    fn of(avail: Avail, problem: String) -> Answer {
        Answer {
            avail,
            problem,
            id: None,
            health: None,
            image: None,
        }
    }
}

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
        // A failed resource keeps why until it is cleared or started.
        for r in self.res.values_mut().filter(|r| !r.failed) {
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
            config_hash: berth_model::fnv1a64(rec.config.as_bytes()),
            unhealthy_on: rec.unhealthy_on.clone(),
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
            let a = match (&engine, known(rid, &label)) {
                (Probe::Problem(a, p), _) => Answer::of(*a, p.clone()),
                (Probe::Engine(_), Some(a)) => a,
                (Probe::Engine(e), None) => match vol.exists(e).await {
                    Ok(true) => Answer::of(Avail::Up, String::new()),
                    Ok(false) => Answer::of(Avail::Down, String::new()),
                    Err(err) => Answer::of(Avail::Warn, err.to_string()),
                },
            };
            answers.insert(rid.clone(), (label.clone(), a.clone()));
            let rs = self.resource_status(rid, rtype, label, a.avail, a.problem, None);
            status.resources.push(rs);
        }
        for c in &r.containers {
            let a = match (&engine, known(&c.rid, &c.spec.name)) {
                (Probe::Problem(a, p), _) => Answer::of(*a, p.clone()),
                (Probe::Engine(_), Some(a)) => a,
                (Probe::Engine(e), None) => match e.inspect(&c.spec.name).await {
                    Ok(Some(cur)) => {
                        let running = cur.state.running;
                        Answer {
                            avail: if running { Avail::Up } else { Avail::Down },
                            problem: String::new(),
                            health: cur
                                .state
                                .health
                                .filter(|_| running)
                                .map(|w| (w, cur.state.health_output)),
                            id: Some(cur.id),
                            image: Some(cur.image),
                        }
                    }
                    Ok(None) => Answer::of(Avail::Down, String::new()),
                    Err(err) => Answer::of(Avail::Warn, err.to_string()),
                },
            };
            answers.insert(c.rid.clone(), (c.spec.name.clone(), a.clone()));
            let Answer {
                avail,
                problem,
                id,
                health: docker,
                image,
            } = a;
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
            // A pinned digest shows where the config says a tag.
            rs.image = image.filter(|i| *i != c.spec.image && avail == Avail::Up);
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
            && answers.values().all(|(_, a)| a.avail != Avail::Warn)
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
            image: None,
        }
    }

    fn publish(&self, status: ObjectStatus) {
        self.agent.status.publish_instance(status);
    }
}
