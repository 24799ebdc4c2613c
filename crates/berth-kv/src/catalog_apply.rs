//! Applying catalog operations: upserts that keep `CreateIndex` and write
//! nothing when nothing changed (a resync does not wake watchers), and
//! removals that leave tombstones for the indexes of blocking queries.

use crate::apply::Overlay;
use crate::catalog::*;
use crate::read::Read;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;

/// `catidx/sid/<node>/<id>` → service name; `catidx/cid/<node>/<id>` →
/// check group: where a record is, from the ids the API names.
fn sid_key(node: &str, id: &str) -> String {
    format!("catidx/sid/{node}/{id}")
}

fn cid_key(node: &str, id: &str) -> String {
    format!("catidx/cid/{node}/{id}")
}

fn get<T: DeserializeOwned>(o: &Overlay<'_>, k: &str) -> io::Result<Option<T>> {
    o.get(k)?
        .map(|v| {
            serde_json::from_str(&v)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{k}: {e}")))
        })
        .transpose()
}

/// Writes `rec` at `key` unless it equals what is there, indexes aside.
fn upsert<T: Serialize + DeserializeOwned + Clone + PartialEq>(
    o: &mut Overlay<'_>,
    key: &str,
    mut rec: T,
    index: u64,
    indexes: fn(&mut T) -> (&mut u64, &mut u64),
) -> io::Result<()> {
    if let Some(mut old) = get::<T>(o, key)? {
        let (c, m) = indexes(&mut old);
        let (oc, om) = (*c, *m);
        let (nc, nm) = indexes(&mut rec);
        (*nc, *nm) = (oc, om);
        if old == rec {
            return Ok(());
        }
        *indexes(&mut rec).1 = index;
    } else {
        let (c, m) = indexes(&mut rec);
        (*c, *m) = (index, index);
    }
    let text = serde_json::to_string(&rec).map_err(io::Error::other)?;
    o.put_raw(key.to_string(), text);
    let tomb = format!("{TOMBSTONES}{key}");
    if o.get(&tomb)?.is_some() {
        o.delete_raw(tomb);
    }
    Ok(())
}

/// Sets a bookkeeping key, writing only if it changes.
fn set_raw(o: &mut Overlay<'_>, key: String, value: &str) -> io::Result<()> {
    if o.get(&key)?.as_deref() != Some(value) {
        o.put_raw(key, value.to_string());
    }
    Ok(())
}

fn remove(o: &mut Overlay<'_>, key: &str, index: u64) {
    o.delete_raw(key.to_string());
    o.put_raw(format!("{TOMBSTONES}{key}"), index.to_string());
}

fn node_ix(n: &mut Node) -> (&mut u64, &mut u64) {
    (&mut n.create_index, &mut n.modify_index)
}

fn service_ix(s: &mut Service) -> (&mut u64, &mut u64) {
    (&mut s.create_index, &mut s.modify_index)
}

fn check_ix(c: &mut Check) -> (&mut u64, &mut u64) {
    (&mut c.create_index, &mut c.modify_index)
}

pub(crate) fn step(o: &mut Overlay<'_>, op: &CatalogOp, index: u64) -> io::Result<()> {
    match op {
        CatalogOp::RegisterNode(n) => upsert(o, &node_key(&n.name), n.clone(), index, node_ix),
        CatalogOp::RegisterService { service, checks } => {
            let sid = sid_key(&service.node, &service.id);
            if let Some(old) = o.get(&sid)? {
                if old != service.name {
                    deregister_service(o, &service.node, &service.id, index)?;
                }
            }
            set_raw(o, sid, &service.name)?;
            let key = service_key(&service.name, &service.node, &service.id);
            upsert(o, &key, service.clone(), index, service_ix)?;
            for c in checks {
                let mut c = c.clone();
                c.node = service.node.clone();
                c.service_id = service.id.clone();
                c.service_name = service.name.clone();
                register_check(o, c, index)?;
            }
            Ok(())
        }
        CatalogOp::RegisterCheck(c) => register_check(o, c.clone(), index),
        CatalogOp::DeregisterService { node, id } => deregister_service(o, node, id, index),
        CatalogOp::DeregisterCheck { node, id } => deregister_check(o, node, id, index),
        CatalogOp::DeregisterNode { node } => {
            for s in services(o, None)?.into_iter().filter(|s| &s.node == node) {
                deregister_service(o, node, &s.id, index)?;
            }
            for c in checks(o, None)?.into_iter().filter(|c| &c.node == node) {
                deregister_check(o, node, &c.id, index)?;
            }
            if o.get(&node_key(node))?.is_some() {
                remove(o, &node_key(node), index);
            }
            Ok(())
        }
        CatalogOp::SetStatus {
            node,
            id,
            status,
            output,
            now_ms,
        } => {
            let Some(group) = o.get(&cid_key(node, id))? else {
                return Ok(());
            };
            let key = check_key(&group, node, id);
            let Some(mut c) = get::<Check>(o, &key)? else {
                return Ok(());
            };
            if c.status != *status {
                c.critical_since_ms = (*status == Health::Critical).then_some(*now_ms);
            }
            c.status = *status;
            c.output = output.clone();
            upsert(o, &key, c, index, check_ix)
        }
    }
}

fn register_check(o: &mut Overlay<'_>, mut c: Check, index: u64) -> io::Result<()> {
    let cid = cid_key(&c.node, &c.id);
    let group = c.group().to_string();
    if let Some(old_group) = o.get(&cid)? {
        let old_key = check_key(&old_group, &c.node, &c.id);
        if old_group != group {
            remove(o, &old_key, index);
        } else if let Some(old) = get::<Check>(o, &old_key)? {
            // The same check registered again (a resync): its state stays.
            if old.def == c.def && old.name == c.name {
                c.status = old.status;
                c.output = old.output;
                c.critical_since_ms = old.critical_since_ms;
            }
        }
    }
    set_raw(o, cid, &group)?;
    let key = check_key(&group, &c.node, &c.id);
    upsert(o, &key, c, index, check_ix)
}

fn deregister_service(o: &mut Overlay<'_>, node: &str, id: &str, index: u64) -> io::Result<()> {
    let sid = sid_key(node, id);
    let Some(name) = o.get(&sid)? else {
        return Ok(());
    };
    remove(o, &service_key(&name, node, id), index);
    o.delete_raw(sid);
    for c in checks(o, Some(&name))?
        .into_iter()
        .filter(|c| c.node == node && c.service_id == id)
    {
        deregister_check(o, node, &c.id, index)?;
    }
    Ok(())
}

fn deregister_check(o: &mut Overlay<'_>, node: &str, id: &str, index: u64) -> io::Result<()> {
    let cid = cid_key(node, id);
    let Some(group) = o.get(&cid)? else {
        return Ok(());
    };
    remove(o, &check_key(&group, node, id), index);
    o.delete_raw(cid);
    Ok(())
}
