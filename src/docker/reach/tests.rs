use bollard::models::{DeviceMapping, Mount, MountVolumeOptions, MountVolumeOptionsDriverConfig};

use super::*;

fn subject<'a>(
    config: &'a HostConfig,
    volumes: &'a [String],
    networks: &'a [String],
) -> Subject<'a> {
    Subject {
        host_config: config,
        volumes,
        networks,
        protected: None,
    }
}

fn reaching(config: HostConfig) -> Vec<&'static str> {
    fields(&judge(subject(&config, &[], &[]), &Surroundings::default()).reaching)
}

#[test]
fn a_plain_container_reaches_nothing() {
    let config = HostConfig {
        ipc_mode: Some("private".into()),
        network_mode: Some("bridge".into()),
        binds: Some(vec!["data:/data".into()]),
        masked_paths: Some(vec!["/proc/kcore".into()]),
        cgroupns_mode: Some(bollard::models::HostConfigCgroupnsModeEnum::HOST),
        ..Default::default()
    };
    assert_eq!(
        judge(subject(&config, &[], &[]), &Surroundings::default()),
        Judgement::default()
    );
}

#[test]
fn every_option_that_reaches_the_host_is_found() {
    let cases: Vec<(HostConfig, &str)> = vec![
        (
            HostConfig {
                privileged: Some(true),
                ..Default::default()
            },
            "privileged",
        ),
        (
            HostConfig {
                cap_add: Some(vec!["SYS_ADMIN".into()]),
                ..Default::default()
            },
            "cap_add",
        ),
        (
            HostConfig {
                devices: Some(vec![DeviceMapping {
                    path_on_host: Some("/dev/sda".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            "devices",
        ),
        (
            HostConfig {
                device_cgroup_rules: Some(vec!["b 8:* rmw".into()]),
                ..Default::default()
            },
            "devices",
        ),
        (
            HostConfig {
                security_opt: Some(vec!["apparmor=unconfined".into()]),
                ..Default::default()
            },
            "security_opt",
        ),
        (
            HostConfig {
                masked_paths: Some(vec![]),
                ..Default::default()
            },
            "security_opt",
        ),
        (
            HostConfig {
                sysctls: Some([("kernel.x".to_string(), "1".to_string())].into()),
                ..Default::default()
            },
            "sysctls",
        ),
        (
            HostConfig {
                binds: Some(vec!["/etc:/host-etc".into()]),
                ..Default::default()
            },
            "binds",
        ),
        (
            HostConfig {
                mounts: Some(vec![Mount {
                    typ: Some(MountType::BIND),
                    source: Some("/".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            "binds",
        ),
        (
            HostConfig {
                mounts: Some(vec![Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some("x".into()),
                    volume_options: Some(MountVolumeOptions {
                        driver_config: Some(MountVolumeOptionsDriverConfig {
                            name: Some("local".into()),
                            options: Some([("device".to_string(), "/etc".to_string())].into()),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            "binds",
        ),
        (
            HostConfig {
                volumes_from: Some(vec!["other".into()]),
                ..Default::default()
            },
            "volumes_from",
        ),
        (
            HostConfig {
                pid_mode: Some("host".into()),
                ..Default::default()
            },
            "pid_mode",
        ),
        (
            HostConfig {
                uts_mode: Some("host".into()),
                ..Default::default()
            },
            "uts_mode",
        ),
        (
            HostConfig {
                ipc_mode: Some("container:db".into()),
                ..Default::default()
            },
            "ipc_mode",
        ),
        (
            HostConfig {
                network_mode: Some("host".into()),
                ..Default::default()
            },
            "network",
        ),
        (
            HostConfig {
                network_mode: Some("container:db".into()),
                ..Default::default()
            },
            "network",
        ),
        (
            HostConfig {
                userns_mode: Some("host".into()),
                ..Default::default()
            },
            "userns_mode",
        ),
        (
            HostConfig {
                cgroup: Some("container:db".into()),
                ..Default::default()
            },
            "cgroup",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(reaching(config.clone()), vec![field], "{config:?}");
    }
}

#[test]
fn volumes_and_networks_around_decide_too() {
    let config = HostConfig::default();
    let volumes = [
        "scripts".to_string(),
        "nfs".to_string(),
        "db".to_string(),
        "mine".to_string(),
    ];
    let networks = [
        "lan".to_string(),
        "backend".to_string(),
        "shared".to_string(),
        "ops".to_string(),
    ];
    let mut around = Surroundings::default();
    around.volumes.insert(
        "scripts".into(),
        VolumeFacts {
            used_by_reaching: Some("agent".into()),
            ..Default::default()
        },
    );
    around.volumes.insert(
        "nfs".into(),
        VolumeFacts {
            host_backed: true,
            ..Default::default()
        },
    );
    around.volumes.insert(
        "db".into(),
        VolumeFacts {
            protected: Some("is labelled".into()),
            ..Default::default()
        },
    );
    around.volumes.insert("mine".into(), VolumeFacts::default());
    let bridge = |f: NetworkFacts| NetworkFacts {
        driver: "bridge".into(),
        ..f
    };
    around.networks.insert(
        "lan".into(),
        NetworkFacts {
            driver: "macvlan".into(),
            ..Default::default()
        },
    );
    around.networks.insert(
        "backend".into(),
        bridge(NetworkFacts {
            internal: true,
            ..Default::default()
        }),
    );
    around
        .networks
        .insert("shared".into(), bridge(NetworkFacts::default()));
    around.networks.insert(
        "ops".into(),
        bridge(NetworkFacts {
            internal: true,
            operators_own: true,
            ..Default::default()
        }),
    );
    let judgement = judge(subject(&config, &volumes, &networks), &around);
    let whys = |findings: &[Finding]| {
        findings
            .iter()
            .map(|f| f.why.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    assert_eq!(
        fields(&judgement.reaching),
        vec!["volumes", "network"],
        "{}",
        whys(&judgement.reaching)
    );
    assert!(
        whys(&judgement.reaching).contains("'nfs'") && whys(&judgement.reaching).contains("'lan'")
    );
    assert_eq!(
        judgement.admins_own.len(),
        2,
        "{}",
        whys(&judgement.admins_own)
    );
    assert!(
        whys(&judgement.admins_own).contains("'scripts'")
            && whys(&judgement.admins_own).contains("'backend'")
    );
    assert_eq!(judgement.protected.len(), 1);
    let isolating = bridge(NetworkFacts {
        isolating: true,
        ..Default::default()
    });
    assert_eq!(judge_network("admins", &isolating).admins_own.len(), 1);
}

/// The fields of findings, in order, without repeats.
fn fields(findings: &[Finding]) -> Vec<&'static str> {
    let mut fields: Vec<&'static str> = Vec::new();
    for finding in findings {
        if !fields.contains(&finding.field) {
            fields.push(finding.field);
        }
    }
    fields
}
