//! Moving one object towards its target: the Docker side of imon.

use super::health::Unwell;
use super::Imon;
use crate::privd;
use berth_drivers::container_docker::{ContainerResource, PullPolicy, LABEL_SPEC};
use berth_drivers::volume::VolumeSpec;
use berth_engine::{Engine, EngineError, PrivateDaemon, PrivateDaemonSpec};
use berth_model::ObjectSettings;
use berth_store::ObjectRecord;

/// An object's config, resolved into what the drivers act on.
pub(crate) struct Resolved {
    pub settings: ObjectSettings,
    pub volumes: Vec<(String, VolumeSpec)>,
    pub containers: Vec<ContainerResource>,
    pub private: Option<PrivateDaemonSpec>,
}

impl Imon {
    pub(crate) fn resolve(&self, rec: &ObjectRecord) -> Result<Resolved, String> {
        let eff = self
            .agent
            .effective(&self.path, &rec.config, self.agent.nodename())?;
        let id = eff.default.get_str("id").unwrap_or_default().to_string();
        let mut volumes = Vec::new();
        let mut containers = Vec::new();
        for s in &eff.resources {
            match s.family.as_str() {
                "volume" => volumes.push((s.name.clone(), VolumeSpec::from_section(&self.path, s))),
                "container" => containers.push(
                    ContainerResource::from_section(&self.path, s, &id, self.agent.nodename())
                        .map_err(|e| format!("{}: {e}", s.name))?,
                ),
                _ => {}
            }
        }
        let private = privd::spec(
            &self.agent.opts.home,
            &self.path,
            &eff,
            &id,
            self.agent.opts.private_bridge_pool,
        );
        let settings = berth_drivers::default::settings(&eff)?;
        Ok(Resolved {
            settings,
            volumes,
            containers,
            private,
        })
    }

    /// The engine the object's containers live on. With `start_private`, a
    /// stopped private daemon is started; without, `None` means it is down.
    pub(crate) async fn engine(
        &mut self,
        r: &Resolved,
        start_private: bool,
    ) -> Result<Option<Engine>, String> {
        let socket = match &r.private {
            None => self.agent.opts.host_docker_socket.clone(),
            Some(spec) => {
                let daemon = PrivateDaemon::new(spec.clone());
                if daemon.running_pid().is_none() {
                    if !start_private {
                        return Ok(None);
                    }
                    self.say("starting docker daemon".into());
                    self.say(daemon.argv().join(" "));
                    daemon.start().await.map_err(|e| e.to_string())?;
                }
                spec.socket.display().to_string()
            }
        };
        let engine = self
            .agent
            .engine(&socket)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(self.tagged(&engine, None)))
    }

    /// Engines other than the current one that may hold the object's
    /// containers from an earlier config: the host's after a move to a
    /// private daemon, the private one after a move back.
    async fn other_engines(&mut self, r: &Resolved) -> Vec<(Engine, Option<PrivateDaemon>)> {
        let (socket, daemon) = match &r.private {
            Some(_) => (self.agent.opts.host_docker_socket.clone(), None),
            None => {
                let d = PrivateDaemon::new(privd::leftover(&self.agent.opts.home, &self.path));
                if d.running_pid().is_none() {
                    return Vec::new();
                }
                (d.spec.socket.display().to_string(), Some(d))
            }
        };
        match self.agent.engine(&socket).await {
            Ok(e) => vec![(self.tagged(&e, None), daemon)],
            Err(_) => Vec::new(),
        }
    }

    /// Stops (and with `remove`, removes) containers an earlier config left
    /// on another engine. Automatic passes (`explicit` false) never touch a
    /// running container: they report it and return true to hold off.
    async fn clear_other_engines(
        &mut self,
        r: &Resolved,
        explicit: bool,
        remove: bool,
    ) -> Result<bool, String> {
        for (engine, daemon) in self.other_engines(r).await {
            let found = engine
                .list_managed(Some(&self.key))
                .await
                .map_err(|e| e.to_string())?;
            if found.is_empty() {
                continue;
            }
            if !explicit {
                if found.iter().any(|c| c.state.running) {
                    self.note_object(format!(
                        "containers still run on {} from an earlier config; start or restart to move them",
                        engine.socket()
                    ));
                    return Ok(true);
                }
                continue;
            }
            self.say(format!(
                "clearing containers left on {} by an earlier config",
                engine.socket()
            ));
            for c in found {
                if c.state.running {
                    engine.stop(&c.id, None).await.map_err(|e| e.to_string())?;
                }
                if remove {
                    engine.remove(&c.id).await.map_err(|e| e.to_string())?;
                }
            }
            if let Some(d) = daemon {
                if remove {
                    self.agent.drop_engine(engine.socket());
                    d.stop().await.map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(false)
    }

    /// The engine reporting its calls as this object's (and resource's),
    /// into the transcript of the action in progress.
    pub(crate) fn tagged(&self, engine: &Engine, rid: Option<&str>) -> Engine {
        engine.with_sink(self.agent.call_sink(
            Some(self.key.clone()),
            rid.map(str::to_string),
            self.transcript.clone(),
        ))
    }

    /// Brings every resource up. `fresh` is an explicit start: stopped
    /// containers start without spending their restart budget.
    pub(crate) async fn converge_started(
        &mut self,
        rec: &ObjectRecord,
        fresh: bool,
    ) -> Result<(), String> {
        let r = self.resolve(rec)?;
        if self.clear_other_engines(&r, fresh, true).await? {
            return Ok(());
        }
        let Some(engine) = self.engine(&r, true).await? else {
            return Err("private docker daemon is not running".into());
        };
        for (rid, vol) in &r.volumes {
            if let Err(e) = vol.provision(&engine, &self.path).await {
                let msg = format!("{rid}: {e}");
                self.res.entry(rid.clone()).or_default().note(msg.clone());
                return Err(msg);
            }
        }
        // Failover containers of a cluster node run under its lease, which
        // the fencing watchdog enforces should this agent die.
        let fenced = self.agent.cluster.is_clustered() && r.settings.is_failover();
        let movable = fenced && r.settings.orchestrate == berth_model::Orchestrate::Ha;
        let mut errors = Vec::new();
        for c in &r.containers {
            let engine = self.tagged(&engine, Some(&c.rid));
            if let Err(e) = self
                .converge_container(&engine, c, fresh, fenced, movable)
                .await
            {
                let msg = format!("{}: {e}", c.rid);
                self.res.entry(c.rid.clone()).or_default().note(e);
                errors.push(msg);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    async fn converge_container(
        &mut self,
        engine: &Engine,
        c: &ContainerResource,
        fresh: bool,
        fenced: bool,
        movable: bool,
    ) -> Result<(), String> {
        let existing = match engine
            .inspect(&c.spec.name)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(cur) => {
                // Once per monitor's life, and at each start: a twin left
                // by an agent that died mid-replacement goes.
                let st = self.res.entry(c.rid.clone()).or_default();
                if fresh || !st.twin_checked {
                    st.twin_checked = true;
                    self.drop_twin(engine, c).await?;
                }
                Some(cur)
            }
            None => self.adopt_twin(engine, c).await?,
        };
        let want = c.spec.labels.get(LABEL_SPEC);
        let mut existed = existing.is_some();
        let action = existing
            .as_ref()
            .filter(|cur| cur.state.running)
            .and_then(|cur| self.unhealthy_action(c, &cur.id, movable));
        let unwell = action == Some(Unwell::Restart);
        if let Some(Unwell::Move(why)) = action {
            self.mark_unhealthy(&c.rid, why).await;
        }
        // Until a container is made from the current config again (a
        // deploy, a start), the service is "config changed" here.
        self.res.entry(c.rid.clone()).or_default().stale = existing
            .as_ref()
            .is_some_and(|cur| cur.labels.get(LABEL_SPEC) != want);
        let id = match existing {
            Some(cur) if unwell => {
                engine
                    .stop(&cur.id, Some(whole_seconds(c.stop_timeout)))
                    .await
                    .map_err(|e| e.to_string())?;
                cur.id
            }
            Some(cur) if cur.state.running => {
                if fenced {
                    // Running already: a failed guard lets the lease run
                    // out (no renewal without the watchdog), which stops it.
                    let _ = self.guard(&c.rid, &cur.id, false);
                }
                if c.dns_berth {
                    // After a daemon restart: the container still asks the
                    // gateway, so berth answers there again.
                    if let Err(e) = self.berth_nameserver(engine, &c.spec).await {
                        self.res.entry(c.rid.clone()).or_default().note(e);
                    }
                }
                if cur.labels.get(LABEL_SPEC) != want {
                    let st = self.res.entry(c.rid.clone()).or_default();
                    st.note(
                        "config changed since the container was created; restart to apply".into(),
                    );
                }
                return Ok(());
            }
            Some(cur) if fresh && cur.labels.get(LABEL_SPEC) != want => {
                engine.remove(&cur.id).await.map_err(|e| e.to_string())?;
                existed = false;
                self.create(engine, c).await?
            }
            Some(cur) if fresh => cur.id,
            Some(cur) => {
                let st = self.res.entry(c.rid.clone()).or_default();
                if st.failed {
                    return Ok(());
                }
                // A restart is scheduled, not slept on: the monitor stays
                // free for actions, and its timer brings it back here.
                match st.restart_at {
                    Some(at) if tokio::time::Instant::now() < at => return Ok(()),
                    Some(_) => st.restart_at = None,
                    None => {
                        let code = cur
                            .state
                            .exit_code
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "?".into());
                        let msg = if st.restarts >= c.restart {
                            st.failed = true;
                            format!(
                                "container exited (code {code}); restart budget of {} spent, resource failed",
                                c.restart
                            )
                        } else {
                            st.restarts += 1;
                            st.restart_at = Some(tokio::time::Instant::now() + c.restart_delay);
                            format!(
                                "container exited (code {code}); restart {}/{} in {:?}",
                                st.restarts, c.restart, c.restart_delay
                            )
                        };
                        st.note(msg.clone());
                        self.agent
                            .events
                            .emit(Some(&self.key), Some(&c.rid), msg, None);
                        return Ok(());
                    }
                }
                cur.id
            }
            None => self.create(engine, c).await?,
        };
        // Values delivered as variables are fixed when the container is
        // created: every start, a restart after a crash too, makes it
        // again with their current versions.
        let id = if existed && !c.env_values.is_empty() {
            engine.remove(&id).await.map_err(|e| e.to_string())?;
            existed = false;
            self.create(engine, c).await?
        } else {
            id
        };
        if fenced {
            self.guard(&c.rid, &id, true)?;
        }
        // An existing container's files went with its last stop; a new
        // one's were written by `create`.
        if existed {
            let staged = crate::files::stage(&self.agent, &self.path, c).await?;
            self.res.entry(c.rid.clone()).or_default().values = staged.versions;
        }
        let id = match engine.start(&id).await {
            Ok(()) => id,
            // A container a crashed dockerd left behind can be unstartable
            // (a stale network endpoint, a dangling mount): recreate it once.
            Err(e) if existed => {
                self.say(format!(
                    "{}: start failed ({e}); recreating the container",
                    c.rid
                ));
                engine.remove(&id).await.map_err(|e| e.to_string())?;
                let fresh_id = self.create(engine, c).await?;
                if fenced {
                    self.guard(&c.rid, &fresh_id, true)?;
                }
                engine.start(&fresh_id).await.map_err(|e| e.to_string())?;
                fresh_id
            }
            Err(e) => return Err(e.to_string()),
        };
        // Its health starts from "starting"; an adopted one's is unknown
        // until its first check.
        self.res.entry(c.rid.clone()).or_default().started_here = Some(id.clone());
        if fresh {
            self.say(format!("{}: wait for up status", c.rid));
            match engine.inspect(&id).await.map_err(|e| e.to_string())? {
                Some(now) if !now.state.running => {
                    return Err(format!(
                        "container exited right after start (code {})",
                        now.state.exit_code.unwrap_or(-1)
                    ))
                }
                Some(_) => self.say(format!("{}: up", c.rid)),
                None => {}
            }
        }
        Ok(())
    }

    /// Tells the fencing watchdog about a failover container, before it
    /// starts (`starting`) or once found running. Fencing fails closed: a
    /// container the watchdog did not take does not start.
    fn guard(&mut self, rid: &str, id: &str, starting: bool) -> Result<(), String> {
        let c = &self.agent.cluster;
        let r = if starting { c.guard(id) } else { c.adopt(id) };
        r.map_err(|e| {
            let why = format!(
                "fencing watchdog unavailable ({e}): failover instances do not start without it"
            );
            self.res
                .entry(rid.to_string())
                .or_default()
                .note(why.clone());
            why
        })
    }

    pub(crate) async fn create(
        &mut self,
        engine: &Engine,
        c: &ContainerResource,
    ) -> Result<String, String> {
        // A deployed version pins the image to the digest it resolved, so
        // a tag moved since cannot mix versions.
        let pin = self.pinned_image(&c.rid);
        let image = pin
            .as_ref()
            .map_or(c.spec.image.as_str(), |(_, d)| d.as_str());
        self.ensure_image(engine, c, image)
            .await
            .map_err(|e| match &pin {
                Some((v, d)) => format!("{d} (the image version {v} deployed): {e}"),
                None => e.to_string(),
            })?;
        let staged = crate::files::stage(&self.agent, &self.path, c).await?;
        let st = self.res.entry(c.rid.clone()).or_default();
        st.values = staged.versions;
        st.stale = false;
        if pin.is_none() && !c.dns_berth && staged.mounts.is_empty() && staged.env.is_empty() {
            return engine.create(&c.spec).await.map_err(|e| e.to_string());
        }
        let mut spec = c.spec.clone();
        // After the spec's fingerprint, like the files below: the config
        // names the tag, the container runs its pinned digest.
        spec.image = image.to_string();
        // After the spec's fingerprint: where the files are, and the
        // values, are not config.
        spec.mounts.extend(staged.mounts);
        if c.dns_berth {
            spec.dns = vec![self.berth_nameserver(engine, &spec).await?.to_string()];
        }
        engine
            .create_with_secrets(&spec, &staged.env)
            .await
            .map_err(|e| e.to_string())
    }

    /// The gateway of the container's bridge, where the node's DNS is made
    /// to answer for it.
    async fn berth_nameserver(
        &self,
        engine: &Engine,
        spec: &berth_engine::ContainerSpec,
    ) -> Result<std::net::IpAddr, String> {
        let network = match spec.network_mode.as_deref() {
            None | Some("default") => "bridge",
            Some(n) => n,
        };
        let gateway = engine
            .network_gateway(network)
            .await
            .map_err(|e| format!("dns_berth: {e}"))?
            .ok_or_else(|| format!("dns_berth: network {network} has no IPv4 gateway"))?;
        let ip = std::net::IpAddr::V4(gateway);
        let dns =
            self.agent.container_dns.get().ok_or(
                "dns_berth: berth's DNS is not serving (--dns-addr none, or not started yet)",
            )?;
        dns.serve_on(ip)
            .map_err(|e| format!("dns_berth: serving DNS on {ip}:53: {e}"))?;
        Ok(ip)
    }

    /// The digest the deployed version of the current config pinned for
    /// resource `rid`, with that version's number.
    fn pinned_image(&self, rid: &str) -> Option<(u64, String)> {
        let rec = self.agent.cluster.desired().get(&self.key).ok()??;
        let history = self.agent.cluster.deploy_history(&self.key).ok()?;
        let v = history.versions.iter().rev().find(|v| {
            v.config == rec.config
                && matches!(
                    v.outcome,
                    berth_model::deploy::Outcome::InProgress
                        | berth_model::deploy::Outcome::Deployed
                )
        })?;
        Some((v.version, v.digests.get(rid)?.clone()))
    }

    async fn ensure_image(
        &mut self,
        engine: &Engine,
        c: &ContainerResource,
        image: &str,
    ) -> Result<(), EngineError> {
        let image = &image.to_string();
        let private = engine.socket() != self.agent.opts.host_docker_socket;
        match c.pull_policy {
            PullPolicy::Always => return engine.pull(image).await,
            _ if engine.image_present(image).await? => return Ok(()),
            PullPolicy::Never => {
                return Err(EngineError::ImageUnavailable {
                    image: image.clone(),
                    reason: "not present and pull_policy=never".into(),
                })
            }
            PullPolicy::Host if private => {
                let host = self
                    .agent
                    .engine(&self.agent.opts.host_docker_socket)
                    .await?;
                if host.image_present(image).await? {
                    self.say(format!("copying image {image} from the host docker daemon"));
                    return engine.copy_image_from(&host, image).await;
                }
            }
            _ => {}
        }
        engine.pull(image).await
    }

    /// Stops every container, removing them with `remove`; stops the
    /// private daemon once none of its containers runs.
    pub(crate) async fn converge_stopped(
        &mut self,
        rec: &ObjectRecord,
        remove: bool,
    ) -> Result<(), String> {
        let r = self.resolve(rec)?;
        self.clear_other_engines(&r, true, remove).await?;
        let Some(engine) = self.engine(&r, false).await? else {
            return Ok(());
        };
        for c in r.containers.iter().rev() {
            let engine = self.tagged(&engine, Some(&c.rid));
            let Some(cur) = engine
                .inspect(&c.spec.name)
                .await
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            if cur.state.running {
                // Fencing must finish within the lease's stop grace (1 s):
                // SIGTERM, then SIGKILL at once.
                let timeout = if self.fencing {
                    std::time::Duration::ZERO
                } else {
                    self.drain(rec, c, c.stop_timeout).await;
                    c.stop_timeout
                };
                let stopped = engine.stop(&cur.id, Some(whole_seconds(timeout))).await;
                self.undrain(&c.rid);
                stopped.map_err(|e| e.to_string())?;
                self.say(format!("{}: wait for down status", c.rid));
            }
            if remove {
                engine.remove(&cur.id).await.map_err(|e| e.to_string())?;
            }
            crate::files::release(&self.agent, &c.spec.name);
            self.res.entry(c.rid.clone()).or_default().values.clear();
        }
        // Containers of resources since removed from the config.
        let known: Vec<&str> = r.containers.iter().map(|c| c.spec.name.as_str()).collect();
        let leftovers = engine
            .list_managed(Some(&self.key))
            .await
            .map_err(|e| e.to_string())?;
        for cur in leftovers
            .iter()
            .filter(|c| !known.contains(&c.name.as_str()))
        {
            if cur.state.running {
                self.say(format!(
                    "{}: no longer in the config, stopping it",
                    cur.name
                ));
                engine
                    .stop(&cur.id, None)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if remove {
                engine.remove(&cur.id).await.map_err(|e| e.to_string())?;
            }
        }
        if let Some(spec) = &r.private {
            let running = engine.list_managed(None).await.map_err(|e| e.to_string())?;
            if running.iter().all(|c| !c.state.running) {
                let daemon = PrivateDaemon::new(spec.clone());
                if let Some(pid) = daemon.running_pid() {
                    self.say(format!(
                        "no more container handled by docker daemon (pid {pid}). shut it down"
                    ));
                    self.agent.drop_engine(engine.socket());
                    daemon.stop().await.map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }
}

/// Docker takes whole seconds; round up so a sub-second grace is not zero.
fn whole_seconds(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i64::MAX)
}
