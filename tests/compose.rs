//! docker-compose.yml checked against the CLI without a Docker engine: services, images,
//! commands, environment, health checks and scaling settings; and the compose test's
//! override file checked to change only where images come from. (`tests/compose_run.rs`
//! runs the file on a Docker engine.)

mod support;

use std::time::Duration;

use yaml_rust2::{Yaml, YamlLoader};

/// The services, with `<<:` merge keys resolved at every level (YAML 1.1 merge, which
/// compose uses).
fn services() -> Vec<(String, Yaml)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("docker-compose.yml");
    let docs = YamlLoader::load_from_str(&text).expect("valid YAML");
    let services = docs[0]["services"].as_hash().expect("a services map");
    services
        .iter()
        .map(|(name, def)| (name.as_str().expect("name").to_string(), merged(def)))
        .collect()
}

fn merged(def: &Yaml) -> Yaml {
    let Some(map) = def.as_hash() else {
        return def.clone();
    };
    let mut out = yaml_rust2::yaml::Hash::new();
    if let Some(base) = map.get(&Yaml::String("<<".into())) {
        for (k, v) in merged(base).as_hash().expect("merge of a map") {
            out.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in map {
        if k.as_str() != Some("<<") {
            out.insert(k.clone(), merged(v));
        }
    }
    Yaml::Hash(out)
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_role_is_a_service_running_a_real_command() {
    let services = services();
    let names: Vec<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "nats",
        "postgres",
        "scheduler",
        "fetcher",
        "processor",
        "result-writer",
        "web-ui",
    ] {
        assert!(
            names.contains(&want),
            "service {want} is missing from {names:?}"
        );
    }
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("Dockerfile");
    let last_stage = dockerfile
        .lines()
        .rfind(|l| l.starts_with("FROM "))
        .expect("a stage");
    assert!(
        last_stage.ends_with(" AS runtime"),
        "`docker build .` builds the small image: {last_stage}"
    );
    for (name, def) in services
        .iter()
        .filter(|(n, _)| !["nats", "postgres"].contains(&n.as_str()))
    {
        let image = def["image"].as_str().expect("image");
        assert!(
            image.starts_with("spindle:"),
            "{name} runs the spindle image, not {image}"
        );
        let target = def["build"]["target"].as_str().expect("build target");
        assert!(
            dockerfile.contains(&format!(" AS {target}")),
            "{name}: stage {target} is in the Dockerfile"
        );
        let command = strings(&def["command"]);
        assert_eq!(command[0], name.as_str(), "{name} runs its own role");
        // The CLI accepts exactly these arguments (clap refuses unknown flags before --help).
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let out = support::run(&args, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "{name}: `spindle {}` is refused:\n{}",
            command.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        // Every variable set is one the role reads (SPINDLE_LOG is read by the logger).
        let help = String::from_utf8_lossy(&out.stdout);
        let env = &def["environment"];
        for (key, _) in env.as_hash().expect("an environment map") {
            let key = key.as_str().expect("a variable name");
            assert!(
                key == "SPINDLE_LOG" || help.contains(&format!("[env: {key}")),
                "{name}: `spindle {}` does not read {key}",
                command[0]
            );
        }
        // The health check is a command the image's CLI accepts.
        let check = strings(&def["healthcheck"]["test"]);
        assert_eq!(check[..3], ["CMD", "spindle", "healthcheck"], "{name}");
        let mut args: Vec<&str> = check[2..].iter().map(String::as_str).collect();
        args.push("--help");
        assert!(
            support::run(&args, Duration::from_secs(30))
                .status
                .success(),
            "{name}: health check `{}` is refused",
            check[1..].join(" ")
        );
        assert_eq!(
            env["SPINDLE_NATS_URL"].as_str(),
            Some("nats://nats:4222"),
            "{name}"
        );
        let db = env["SPINDLE_DATABASE_URL"].as_str().expect("database URL");
        assert!(
            db.starts_with("postgres://") && db.contains("@postgres:5432/"),
            "{name}: {db}"
        );
        for dep in ["nats", "postgres"] {
            assert_eq!(
                def["depends_on"][dep]["condition"].as_str(),
                Some("service_healthy"),
                "{name} waits for a healthy {dep}"
            );
        }
        assert_eq!(def["restart"].as_str(), Some("unless-stopped"), "{name}");
    }
}

#[test]
fn workers_scale_and_infrastructure_is_health_checked() {
    let services = services();
    let get = |n: &str| {
        services
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, d)| d.clone())
            .expect(n)
    };
    for name in ["fetcher", "processor", "result-writer"] {
        let def = get(name);
        // `--scale` needs containers without a fixed name or host port.
        assert!(
            def["container_name"].is_badvalue(),
            "{name} has a container_name"
        );
        assert!(def["ports"].is_badvalue(), "{name} publishes a host port");
    }
    let nats = get("nats");
    assert!(
        strings(&nats["command"])
            .iter()
            .any(|a| a == "--jetstream" || a == "-js"),
        "JetStream is on"
    );
    for name in ["nats", "postgres"] {
        assert!(
            !strings(&get(name)["healthcheck"]["test"]).is_empty(),
            "{name} has a health check"
        );
    }
    // Roles without a port are healthy while they keep writing their heartbeat file.
    for name in ["scheduler", "fetcher", "processor", "result-writer"] {
        let def = get(name);
        let check = strings(&def["healthcheck"]["test"]);
        let file = check
            .iter()
            .position(|a| a == "--file")
            .map(|i| check[i + 1].as_str());
        assert_eq!(
            file,
            def["environment"]["SPINDLE_HEARTBEAT_FILE"].as_str(),
            "{name} checks the heartbeat file it writes"
        );
    }
    let web = get("web-ui");
    assert_eq!(
        strings(&web["healthcheck"]["test"])[1..3],
        ["spindle".to_string(), "healthcheck".to_string()]
    );
    // Published on the host's loopback unless the operator says otherwise, and never without
    // a login: compose refuses to start without the password hash.
    assert_eq!(
        strings(&web["ports"]),
        ["${SPINDLE_WEB_PUBLISH:-127.0.0.1:5000}:5000"]
    );
    let hash = web["environment"]["SPINDLE_WEB_PASSWORD_HASH"]
        .as_str()
        .expect("a password hash from the environment");
    assert!(hash.starts_with("${SPINDLE_WEB_PASSWORD_HASH:?"), "{hash}");
    assert!(strings(&get("scheduler")["command"]).contains(&"--projects".to_string()));
}

#[test]
fn the_compose_test_overrides_only_image_sources() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/compose/docker-compose.test.yml"
    ))
    .expect("the override file");
    let docs = YamlLoader::load_from_str(&text).expect("valid YAML");
    let real: Vec<String> = services().into_iter().map(|(name, _)| name).collect();
    let overridden = docs[0]["services"].as_hash().expect("a services map");
    for (name, def) in overridden {
        let name = name.as_str().expect("a service name");
        let keys: Vec<&str> = def
            .as_hash()
            .expect("a service map")
            .keys()
            .filter_map(Yaml::as_str)
            .collect();
        if real.iter().any(|r| r == name) {
            assert_eq!(keys, ["image"], "{name}: the override sets its image only");
        } else {
            assert_eq!(name, "site", "the one added service is the generated site");
            let command = strings(&def["command"]);
            assert_eq!(command[0], "serve-site", "{command:?}");
        }
    }
    for name in &real {
        assert!(
            overridden.contains_key(&Yaml::String(name.clone())),
            "{name} gets a locally built image"
        );
    }
    let top: Vec<&str> = docs[0]
        .as_hash()
        .expect("a map")
        .keys()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(top, ["services", "networks"]);
    assert_eq!(
        docs[0]["networks"]["default"]["internal"].as_bool(),
        Some(true),
        "no route off the machine"
    );
}
