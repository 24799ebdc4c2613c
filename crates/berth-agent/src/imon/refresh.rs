//! The `refresh` action: brings a running instance's `sec` and `cfg`
//! values to their current versions. When every container that takes
//! files has `secrets_reload=signal:<name>` and none takes a value as a
//! variable, the files are rewritten in place and each container gets its
//! signal; otherwise the instance restarts, drained first like any stop.
//! The leader's rotation loop asks for it one instance at a time.

use super::Imon;
use berth_drivers::container_docker::files::Reload;
use berth_model::status::Target;

impl Imon {
    pub(crate) async fn refresh(&mut self) -> Result<(), String> {
        let rec = self
            .agent
            .cluster
            .desired()
            .get(&self.key)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: no such object", self.key))?;
        if rec.target != Target::Started || rec.frozen {
            self.say("not started here: nothing to refresh".into());
            return Ok(());
        }
        let r = self.resolve(&rec)?;
        let Some(engine) = self.engine(&r, false).await? else {
            return Ok(());
        };
        let restart = r.containers.iter().any(|c| {
            !c.env_values.is_empty() || (!c.files.is_empty() && c.reload == Reload::Restart)
        });
        if restart {
            self.say("restart: its secrets and configs have new versions".into());
            self.may_start(&rec)?;
            self.converge_stopped(&rec, false).await?;
            return self.converge_started(&rec, true).await;
        }
        for c in r.containers.iter().filter(|c| !c.files.is_empty()) {
            let Some(signal) = c.reload.signal_name() else {
                continue;
            };
            let engine = self.tagged(&engine, Some(&c.rid));
            let staged = crate::files::stage(&self.agent, &self.path, c).await?;
            self.res.entry(c.rid.clone()).or_default().values = staged.versions;
            let running = engine
                .inspect(&c.spec.name)
                .await
                .map_err(|e| e.to_string())?
                .filter(|cur| cur.state.running);
            if let Some(cur) = running {
                engine
                    .kill(&cur.id, signal)
                    .await
                    .map_err(|e| format!("{}: {e}", c.rid))?;
                self.say(format!("{}: files rewritten, {signal} sent", c.rid));
            }
        }
        Ok(())
    }
}
