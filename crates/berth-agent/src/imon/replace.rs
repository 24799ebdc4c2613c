//! A deploy's start-first replacement (`update_order=start-first`): for
//! each container, one from the current config starts next to the old one
//! as `<name>.next` and must pass its check before the old one is drained
//! (out of the catalog, in-flight requests let finish) and removed; the
//! new one then takes the old name and is adopted, checked at once. A new
//! container that does not become healthy is removed and the old one keeps
//! running, untouched. A container that publishes a fixed host port cannot
//! have a twin, and is replaced stop-first (the deploy log says so).
//! `design/rollout.md`.

use super::health::{address, probe};
use super::Imon;
use berth_drivers::container_docker::{ContainerResource, LABEL_SPEC};
use berth_engine::Engine;
use berth_model::health::{HealthState, Tracker};
use berth_store::ObjectRecord;
use std::time::Duration;
use tokio::time::Instant;

/// How long a new container has to become healthy, over its start period.
const READY_WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

/// The twin's name while both run.
pub(crate) fn next_name(name: &str) -> String {
    format!("{name}.next")
}

impl Imon {
    pub(crate) async fn replace_start_first(&mut self, rec: &ObjectRecord) -> Result<(), String> {
        let r = self.resolve(rec)?;
        let Some(engine) = self.engine(&r, true).await? else {
            return Err("private docker daemon is not running".into());
        };
        for c in &r.containers {
            let engine = self.tagged(&engine, Some(&c.rid));
            self.replace_one(&engine, rec, c)
                .await
                .map_err(|e| format!("{}: {e}", c.rid))?;
        }
        Ok(())
    }

    async fn replace_one(
        &mut self,
        engine: &Engine,
        rec: &ObjectRecord,
        c: &ContainerResource,
    ) -> Result<(), String> {
        let twin = next_name(&c.spec.name);
        self.drop_twin(engine, c).await?;
        let Some(old) = engine
            .inspect(&c.spec.name)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        if !old.state.running {
            // Nothing runs to overlap with: the converge that follows makes
            // it from the current config and starts it now.
            engine.remove(&old.id).await.map_err(|e| e.to_string())?;
            return Ok(());
        }
        if old.labels.get(LABEL_SPEC) == c.spec.labels.get(LABEL_SPEC) {
            return Ok(());
        }
        if let Some(why) = no_twin(c) {
            self.say(format!("{}: {why}: replaced stop-first", c.rid));
            return self.replace_stop_first(engine, rec, c, &old.id).await;
        }
        let mut next = c.clone();
        next.spec.name = twin.clone();
        let id = self.create(engine, &next).await?;
        if let Err(e) = engine.start(&id).await {
            let _ = engine.remove(&id).await;
            return Err(format!("starting {twin}: {e}; the old one keeps running"));
        }
        self.say(format!("{}: started {twin} next to the running one", c.rid));
        if let Err(why) = ready(engine, c, &id).await {
            let _ = engine.remove(&id).await;
            return Err(format!(
                "the new container did not become healthy ({why}); the old one keeps running"
            ));
        }
        self.say(format!("{}: {twin} is healthy", c.rid));
        self.replace_stop_first(engine, rec, c, &old.id).await?;
        engine
            .rename(&id, &c.spec.name)
            .await
            .map_err(|e| e.to_string())?;
        // Adopted by the next pass and checked at once: it passed just now.
        let st = self.res.entry(c.rid.clone()).or_default();
        st.prober = None;
        st.health = None;
        st.health_due = None;
        st.started_here = None;
        Ok(())
    }

    /// Removes a twin an agent that died mid-replacement left next to the
    /// container (a twin left alone is adopted instead: `adopt_twin`).
    pub(crate) async fn drop_twin(
        &self,
        engine: &Engine,
        c: &ContainerResource,
    ) -> Result<(), String> {
        let twin = next_name(&c.spec.name);
        if let Some(t) = engine.inspect(&twin).await.map_err(|e| e.to_string())? {
            engine.remove(&t.id).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// After an agent died between removing the old container and renaming
    /// its twin: the twin, running, takes the name rather than a new
    /// container being made.
    pub(crate) async fn adopt_twin(
        &mut self,
        engine: &Engine,
        c: &ContainerResource,
    ) -> Result<Option<berth_engine::ManagedContainer>, String> {
        let twin = next_name(&c.spec.name);
        let Some(t) = engine.inspect(&twin).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if !t.state.running {
            engine.remove(&t.id).await.map_err(|e| e.to_string())?;
            return Ok(None);
        }
        engine
            .rename(&t.id, &c.spec.name)
            .await
            .map_err(|e| e.to_string())?;
        self.say(format!(
            "{}: adopted {twin}, left by an interrupted start-first replacement",
            c.rid
        ));
        engine
            .inspect(&c.spec.name)
            .await
            .map_err(|e| e.to_string())
    }

    /// Drains the old container, then stops and removes it.
    async fn replace_stop_first(
        &mut self,
        engine: &Engine,
        rec: &ObjectRecord,
        c: &ContainerResource,
        old_id: &str,
    ) -> Result<(), String> {
        self.drain(rec, c, c.stop_timeout).await;
        let stopped = engine
            .stop(old_id, Some(c.stop_timeout.as_secs().max(1) as i64))
            .await;
        let removed = engine.remove(old_id).await;
        self.undrain(&c.rid);
        stopped.and(removed).map_err(|e| e.to_string())
    }
}

/// Why `c` cannot run next to a twin, if it cannot.
fn no_twin(c: &ContainerResource) -> Option<String> {
    if let Some(p) = c.spec.ports.iter().find_map(|p| p.host_port) {
        return Some(format!(
            "it publishes host port {p}, which two containers cannot share"
        ));
    }
    if let Some(m) = c
        .spec
        .network_mode
        .as_deref()
        .filter(|m| *m == "host" || m.starts_with("container:"))
    {
        return Some(format!(
            "it shares a network namespace (network_mode {m}), where a twin would answer its checks"
        ));
    }
    if !c.files.is_empty() {
        return Some("its secrets and configs files are delivered per container name".to_string());
    }
    None
}

/// Waits until container `id` passes its check (berth's `check`, else
/// Docker's healthcheck, else running is enough); fails once the check
/// makes it unhealthy, by the same rule as the monitor's (retries in a
/// row, after the start period).
async fn ready(engine: &Engine, c: &ContainerResource, id: &str) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + c.health.start_period + READY_WAIT;
    let mut tracker = Tracker::new(c.health);
    let every = c.health.interval.clamp(POLL, Duration::from_secs(5));
    let mut last;
    loop {
        let Some(ctr) = engine.inspect(id).await.map_err(|e| e.to_string())? else {
            return Err("it is gone".into());
        };
        if !ctr.state.running {
            return Err(format!("it exited ({})", ctr.state.status));
        }
        match (&c.check, ctr.state.health.as_deref()) {
            (Some(target), _) => match address(engine, id, target.port()).await {
                Some(a) => {
                    let (passed, out) =
                        match tokio::time::timeout(c.health.timeout, probe(a, target)).await {
                            Ok(r) => r,
                            Err(_) => (false, format!("no answer within {:?}", c.health.timeout)),
                        };
                    if passed {
                        return Ok(());
                    }
                    tracker.observe(false, started.elapsed());
                    if tracker.state() == HealthState::Unhealthy {
                        return Err(out);
                    }
                    last = out;
                }
                None => last = "no address yet".into(),
            },
            (None, Some("healthy")) | (None, None) => return Ok(()),
            (None, Some("unhealthy")) => {
                return Err(ctr.state.health_output.unwrap_or_default());
            }
            (None, Some(_)) => last = "healthcheck starting".into(),
        }
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(if c.check.is_some() { every } else { POLL }).await;
    }
}
