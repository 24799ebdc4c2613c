//! Building the object's observed status from Docker and the monitor's memory.

use super::Imon;
use berth_model::status::{Avail, ObjectStatus, ResourceStatus};
use berth_store::ObjectRecord;

impl Imon {
    pub(crate) async fn refresh_status(&mut self, rec: &ObjectRecord) {
        let mut log: Vec<String> = self.obj_log.iter().cloned().collect();
        if let Some(e) = &self.config_error {
            log.push(e.clone());
        }
        let mut status = ObjectStatus {
            path: self.key.clone(),
            node: self.agent.nodename().to_string(),
            avail: Avail::NotApplicable,
            frozen: rec.frozen,
            target: rec.target,
            topology: "failover".into(),
            orchestrate: "no".into(),
            log,
            resources: Vec::new(),
            docker_socket: None,
        };
        let r = match self.resolve(rec) {
            Ok(r) => r,
            Err(e) => {
                status.avail = Avail::Warn;
                status.log.push(e);
                self.publish(status);
                return;
            }
        };
        status.topology = r
            .eff
            .default
            .get_str("topology")
            .unwrap_or("failover")
            .to_string();
        status.orchestrate = r
            .eff
            .default
            .get_str("orchestrate")
            .unwrap_or("no")
            .to_string();
        status.docker_socket = Some(match &r.private {
            Some(p) => p.socket.display().to_string(),
            None => self.agent.opts.host_docker_socket.clone(),
        });
        let engine = self.engine(&r, false).await;
        let engine_problem = match &engine {
            Err(e) => Some(e.clone()),
            Ok(_) => None,
        };
        let engine = engine.ok().flatten();
        for (rid, vol) in &r.volumes {
            let st = self.res.entry(rid.clone()).or_default();
            let mut rs = ResourceStatus {
                rid: rid.clone(),
                rtype: format!(
                    "volume.{}",
                    match vol {
                        berth_drivers::volume::VolumeSpec::Docker { .. } => "docker",
                        _ => "directory",
                    }
                ),
                label: vol.label(),
                avail: Avail::Down,
                failed: false,
                log: st.log.iter().cloned().collect(),
                container_id: None,
                restarts: 0,
            };
            match (&engine, &engine_problem) {
                (_, Some(p)) => {
                    rs.avail = Avail::Warn;
                    rs.log.push(p.clone());
                }
                (Some(e), None) => match vol.exists(e).await {
                    Ok(true) => rs.avail = Avail::Up,
                    Ok(false) => {}
                    Err(err) => {
                        rs.avail = Avail::Warn;
                        rs.log.push(err.to_string());
                    }
                },
                (None, None) => {}
            }
            status.resources.push(rs);
        }
        for c in &r.containers {
            let mut rs = ResourceStatus {
                rid: c.rid.clone(),
                rtype: "container.docker".into(),
                label: c.label(),
                avail: Avail::Down,
                failed: false,
                log: Vec::new(),
                container_id: None,
                restarts: 0,
            };
            match (&engine, &engine_problem) {
                (_, Some(p)) => {
                    rs.avail = Avail::Warn;
                    rs.log.push(p.clone());
                }
                (Some(e), None) => match e.inspect(&c.spec.name).await {
                    Ok(Some(cur)) => {
                        rs.container_id = Some(cur.id.clone());
                        if cur.state.running {
                            rs.avail = Avail::Up;
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        rs.avail = Avail::Warn;
                        rs.log.push(err.to_string());
                    }
                },
                (None, None) => {}
            }
            let st = self.res.entry(c.rid.clone()).or_default();
            rs.failed = st.failed;
            rs.restarts = st.restarts;
            let mut log: Vec<String> = st.log.iter().cloned().collect();
            log.append(&mut rs.log);
            rs.log = log;
            status.resources.push(rs);
        }
        status.avail = Avail::aggregate(status.resources.iter().map(|r| r.avail));
        self.publish(status);
    }

    fn publish(&self, status: ObjectStatus) {
        self.agent
            .statuses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.key.clone(), status);
    }
}
