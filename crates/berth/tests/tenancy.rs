//! The seed's tenancy model: a private dockerd's socket belongs to a group.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

struct Account {
    group: String,
    member: String,
    outsider: String,
}

impl Account {
    fn create() -> Account {
        let tag = unique("");
        // Built first, so Drop removes whatever part got created.
        let a = Account {
            group: format!("bt{tag}"),
            member: format!("bm{tag}"),
            outsider: format!("bo{tag}"),
        };
        assert!(Command::new("groupadd")
            .arg(&a.group)
            .status()
            .expect("groupadd")
            .success());
        for (user, groups) in [(&a.member, Some(&a.group)), (&a.outsider, None)] {
            let mut c = Command::new("useradd");
            c.args(["-M", "-s", "/bin/sh"]);
            if let Some(g) = groups {
                c.args(["-G", g]);
            }
            assert!(c.arg(user).status().expect("useradd").success());
        }
        a
    }

    /// Runs `docker ps` on `sock` as `user`, with the user's groups.
    fn docker_ps_as(user: &str, sock: &str) -> std::process::Output {
        Command::new("setpriv")
            .args([
                "--reuid",
                user,
                "--regid",
                user,
                "--init-groups",
                "docker",
                "-H",
            ])
            .arg(format!("unix://{sock}"))
            .arg("ps")
            .output()
            .expect("setpriv")
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        for u in [&self.member, &self.outsider] {
            let _ = Command::new("userdel").arg(u).output();
        }
        let _ = Command::new("groupdel").arg(&self.group).output();
    }
}

#[test]
fn socket_group_members_reach_the_private_docker_and_others_are_denied() {
    let acct = Account::create();
    let env = Env::start();
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let data = format!("{}/srv/{{path}}/docker", env.home().display());
    env.create_svc(
        "team1/svc1",
        &[
            &format!("docker_data_dir={data}"),
            &format!("docker_socket_group={}", acct.group),
            "container#0.pull_policy=host",
        ],
    );
    env.ok(&["team1/svc1", "start"]);
    let sock = env.status("team1/svc1")["docker_socket"]
        .as_str()
        .expect("socket")
        .to_string();
    let meta = std::fs::metadata(&sock).expect("socket exists");
    assert_eq!(meta.mode() & 0o777, 0o660);
    let gid = nix::unistd::Group::from_name(&acct.group)
        .expect("lookup")
        .expect("group")
        .gid;
    assert_eq!(meta.gid(), gid.as_raw());

    let member = Account::docker_ps_as(&acct.member, &sock);
    assert!(
        member.status.success(),
        "member: {}",
        String::from_utf8_lossy(&member.stderr)
    );
    assert!(String::from_utf8_lossy(&member.stdout).contains("team1..svc1.container.0"));

    let outsider = Account::docker_ps_as(&acct.outsider, &sock);
    assert!(!outsider.status.success());
    let err = String::from_utf8_lossy(&outsider.stderr);
    assert!(err.contains("permission denied"), "{err}");
}
