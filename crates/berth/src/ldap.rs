//! The daemon's LDAP set-up from its `--ldap-*` options: the directory
//! logins and the LDAP sync use (`berth-cluster`'s `ldap.rs`).

use anyhow::{bail, Context};
use berth_cli::args::DaemonOpts;

/// The directory `o` describes, or `None` without `--ldap-url`. The bind
/// password and the CA certificates are read here, once.
pub fn directory(o: &DaemonOpts) -> anyhow::Result<Option<berth_ldap::Directory>> {
    if o.ldap_urls.is_empty() {
        let stray = o.ldap_bind_dn.is_some()
            || o.ldap_bind_password_file.is_some()
            || !o.ldap_user_bases.is_empty()
            || o.ldap_group_base.is_some();
        if stray {
            bail!("--ldap-* options without --ldap-url: give the LDAP server's URL");
        }
        return Ok(None);
    }
    let Some(first_base) = o.ldap_user_bases.first().cloned() else {
        bail!("--ldap-url needs --ldap-user-base, where users are searched");
    };
    let bind_password = match &o.ldap_bind_password_file {
        None => None,
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading --ldap-bind-password-file {}", f.display()))?;
            Some(text.lines().next().unwrap_or_default().to_string())
        }
    };
    if bind_password.is_some() && o.ldap_bind_dn.is_none() {
        bail!("--ldap-bind-password-file without --ldap-bind-dn: whose password is it?");
    }
    let ca_pem = match &o.ldap_ca_file {
        None => None,
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading --ldap-ca-file {}", f.display()))?,
        ),
    };
    let cfg = berth_ldap::Config {
        urls: o.ldap_urls.clone(),
        bind_dn: o.ldap_bind_dn.clone(),
        bind_password,
        group_base: o.ldap_group_base.clone().unwrap_or(first_base),
        user_bases: o.ldap_user_bases.clone(),
        user_filter: o.ldap_user_filter.clone(),
        user_attr: o.ldap_user_attr.clone(),
        member_attr: o.ldap_group_member_attr.clone(),
        starttls: o.ldap_starttls,
        ca_pem,
        timeout: o.ldap_timeout,
    };
    Ok(Some(berth_ldap::Directory::new(cfg)?))
}
