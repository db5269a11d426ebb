//! The create policy's cases: what each role may ask for, and how a bad value is named.

use super::*;
use serde_json::json;

fn request(extra: serde_json::Value) -> CreateContainerRequest {
    let mut base = json!({"image": "dcp-test/busybox:latest"});
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(base).unwrap()
}

#[test]
fn image_references() {
    for good in [
        "busybox",
        "busybox:1.36",
        "library/nginx:latest",
        "registry.local:5000/team/app:v1",
        "localhost/app",
        "127.0.0.1:55000/dcp-test/busybox:latest",
        &format!("app@sha256:{}", "a".repeat(64)),
    ] {
        assert!(validate_image(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "-x",
        "UPPER/case",
        "app:",
        "app:bad tag",
        "app@md5:12",
        "a//b",
        "../etc",
        "app;rm",
    ] {
        assert!(validate_image(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_plain_request_is_fine_for_operators() {
    let plain = request(
        json!({"name": "web", "env": {"MODE": "x"}, "ports": [{"container_port": 80, "host_port": 8080}],
        "volumes": [{"source": "data", "target": "/data"}], "restart_policy": {"name": "unless-stopped"},
        "memory_bytes": 67108864, "cpus": 0.5, "pids_limit": 100, "network": "bridge", "privileged": false}),
    );
    assert_eq!(
        check(&plain, Role::Operator, &Surroundings::default()),
        Ok(())
    );
}

#[test]
fn every_host_reaching_option_is_forbidden_to_operators_and_needs_a_reason_from_admins() {
    let cases = [
        (json!({"privileged": true}), "privileged"),
        (json!({"cap_add": ["SYS_ADMIN"]}), "cap_add"),
        (json!({"devices": ["/dev/fuse"]}), "devices"),
        (
            json!({"security_opt": ["seccomp=unconfined"]}),
            "security_opt",
        ),
        (
            json!({"binds": [{"source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]}),
            "binds",
        ),
        (
            json!({"binds": [{"source": "/", "target": "/host"}]}),
            "binds",
        ),
        (json!({"sysctls": {"net.ipv4.ip_forward": "1"}}), "sysctls"),
        (json!({"pid_mode": "host"}), "pid_mode"),
        (json!({"ipc_mode": "container:abc"}), "ipc_mode"),
        (json!({"uts_mode": "host"}), "uts_mode"),
        (json!({"network": "host"}), "network"),
        (json!({"network": "container:other"}), "network"),
    ];
    for (extra, field) in cases {
        let req = request(extra.clone());
        for role in [Role::Operator, Role::Viewer] {
            match check(&req, role, &Surroundings::default()) {
                Err(PolicyError::Forbidden { field: f, .. }) => assert_eq!(f, field, "{extra}"),
                other => panic!("{role} {extra}: {other:?}"),
            }
        }
        assert!(
            matches!(
                check(&req, Role::Admin, &Surroundings::default()),
                Err(PolicyError::Forbidden { .. })
            ),
            "{extra}"
        );
        let mut allowed = extra.clone();
        allowed["allow_privileged"] = json!(true);
        allowed["reason"] = json!("debugging the host");
        assert_eq!(
            check(
                &request(allowed.clone()),
                Role::Admin,
                &Surroundings::default()
            ),
            Ok(()),
            "{allowed}"
        );
        assert!(matches!(
            check(&request(allowed), Role::Operator, &Surroundings::default()),
            Err(PolicyError::Forbidden { .. })
        ));
    }
}

#[test]
fn host_backed_volumes_and_host_attached_networks_reach_the_host() {
    let req =
        request(json!({"volumes": [{"source": "etc-bind", "target": "/x"}], "network": "lan"}));
    let mut facts = Surroundings::default();
    facts.volumes.insert(
        "etc-bind".into(),
        crate::docker::reach::VolumeFacts {
            host_backed: true,
            ..Default::default()
        },
    );
    facts.networks.insert(
        "lan".into(),
        crate::docker::reach::NetworkFacts {
            driver: "macvlan".into(),
            ..Default::default()
        },
    );
    match check(&req, Role::Operator, &facts) {
        Err(PolicyError::Forbidden { message, .. }) => assert!(
            message.contains("'etc-bind'") && message.contains("'lan'"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        check(&req, Role::Operator, &Surroundings::default()),
        Ok(())
    );
    for (field, value) in [("pid_mode", "private"), ("uts_mode", "x")] {
        let req = request(json!({ field: value }));
        assert!(
            matches!(
                check(&req, Role::Operator, &Surroundings::default()),
                Err(PolicyError::Invalid { .. })
            ),
            "{field}"
        );
    }
    let shareable = request(json!({"ipc_mode": "shareable"}));
    assert_eq!(
        check(&shareable, Role::Operator, &Surroundings::default()),
        Ok(())
    );
    let tiny = request(json!({"cpus": 1e-12}));
    assert!(matches!(
        check(&tiny, Role::Operator, &Surroundings::default()),
        Err(PolicyError::Invalid { .. })
    ));
}

#[test]
fn volumes_are_names_not_paths() {
    let req = request(json!({"volumes": [{"source": "/etc", "target": "/x"}]}));
    assert!(matches!(
        check(&req, Role::Admin, &Surroundings::default()),
        Err(PolicyError::Invalid { .. })
    ));
    let req = request(json!({"volumes": [{"source": "data", "target": "/x/../y"}]}));
    assert!(matches!(
        check(&req, Role::Admin, &Surroundings::default()),
        Err(PolicyError::Invalid { .. })
    ));
}

#[test]
fn encodings_that_could_smuggle_options_are_refused_by_parsing() {
    for body in [
        r#"{"image": "busybox", "Privileged": true}"#,
        r#"{"image": "busybox", "HostConfig": {"Privileged": true}}"#,
        r#"{"image": "busybox", "privileged": false, "privileged": true}"#,
        r#"{"image": "busybox", "env": {"A": "1", "A": "2"}}"#,
        r#"{"image": "busybox", "binds": [{"source": "/", "target": "/h", "propagation": "shared"}]}"#,
    ] {
        assert!(
            serde_json::from_str::<CreateContainerRequest>(body).is_err(),
            "{body}"
        );
    }
}

#[test]
fn admins_alone_set_the_protected_and_shared_labels() {
    let protected = request(json!({"labels": {"dcp.protected": "true"}}));
    assert_eq!(
        check(&protected, Role::Admin, &Surroundings::default()),
        Ok(())
    );
    assert!(matches!(
        check(&protected, Role::Operator, &Surroundings::default()),
        Err(PolicyError::Forbidden { .. })
    ));
}

#[test]
fn reserved_labels_and_bad_env_names() {
    assert!(matches!(
        check(
            &request(json!({"labels": {"dcp.op": "x"}})),
            Role::Admin,
            &Surroundings::default()
        ),
        Err(PolicyError::Invalid { .. })
    ));
    assert!(matches!(
        check(
            &request(json!({"env": {"lower": "x"}})),
            Role::Admin,
            &Surroundings::default()
        ),
        Err(PolicyError::Invalid { .. })
    ));
    assert!(matches!(
        check(
            &request(json!({"env": {"1ABC": "x"}})),
            Role::Admin,
            &Surroundings::default()
        ),
        Err(PolicyError::Invalid { .. })
    ));
}
