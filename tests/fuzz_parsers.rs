//! Property tests that feed every parser random and mutated input (cargo fuzz does not fit
//! CI; proptest runs a fixed number of cases from a fixed seed, in seconds): map files, env
//! names with options, TOML run configs and sweep files, TensorBoard event files, and
//! checkpoints. No input may panic; what is refused is refused with an error.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A runner with `cases` cases from a fixed seed, so CI runs the same inputs every time.
fn runner(cases: u32) -> TestRunner {
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tame-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Steps an env a few times with every action, to exercise what the parser built.
fn exercise(env: &mut dyn tame_envs::Env) {
    let mut obs = vec![0.0f32; env.observation_space().dim()];
    env.reset(Some(0), &mut obs);
    for k in 0..20usize {
        let r = match env.action_space() {
            tame_envs::Space::Discrete(n) => env.step(tame_envs::Action::Discrete(k % n), &mut obs),
            tame_envs::Space::Box { low, .. } => env.step(tame_envs::Action::Continuous(&vec![0.5; low.len()]), &mut obs),
        };
        match r {
            Ok(s) if s.terminated || s.truncated => env.reset(None, &mut obs),
            Ok(_) => {}
            Err(_) => env.reset(None, &mut obs),
        }
    }
}

#[test]
fn map_files_never_panic() {
    let dir = scratch("maps");
    let path = dir.join("map.txt");
    let cell = prop::sample::select(vec!['S', 'F', 'H', 'G', 'C', 'W', 'F', 'F', '\n', '\n', '#', ' ', 'x', 'é', '\r']);
    let text = prop::collection::vec(cell, 0..300).prop_map(|v| v.into_iter().collect::<String>());
    let option = prop::sample::select(vec!["", ":slip=0.3", ":slippery=true", ":limit=5", ":slip=2", ":discrete=3"]);
    let tried = std::cell::Cell::new(0u32);
    runner(1000)
        .run(&(text, option), |(text, option)| {
            tried.set(tried.get() + 1);
            std::fs::write(&path, &text).unwrap();
            let name = format!("map:{}{option}", path.display());
            match tame_envs::transition_table(&name) {
                Ok(t) => {
                    for outcomes in t.p.iter().flatten() {
                        let total: f64 = outcomes.iter().map(|o| o.prob).sum();
                        prop_assert!((total - 1.0).abs() < 1e-9, "{text:?}: a row sums to {total}");
                    }
                    let mut env = tame_envs::make(&name).expect("a map with a table builds an env");
                    exercise(env.as_mut());
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            Ok(())
        })
        .unwrap();
    eprintln!("map files: {} inputs", tried.get());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn env_names_with_options_never_panic() {
    let base = prop::sample::select(vec![
        "frozenlake", "FrozenLake-v1", "frozenlake8x8-noslip", "cliffwalking", "pendulum", "cartpole",
        "mountaincar", "map", "map:", "", "nosuchenv",
    ]);
    let key = prop::sample::select(vec!["slippery", "slip", "discrete", "limit", "color", "", "SLIP"]);
    let value = prop::sample::select(vec![
        "true", "false", "0", "1", "0.5", "-1", "2", "none", "5", "1e309", "NaN", "4294967296", "99999999999999999999", "",
    ]);
    let option = (key, value, any::<bool>())
        .prop_map(|(k, v, eq)| if eq { format!(":{k}={v}") } else { format!(":{k}{v}") });
    let structured = (base, prop::collection::vec(option, 0..4)).prop_map(|(b, o)| format!("{b}{}", o.concat()));
    let name = prop_oneof![structured, "\\PC{0,40}"];
    let tried = std::cell::Cell::new(0u32);
    runner(2000)
        .run(&name, |name| {
            tried.set(tried.get() + 1);
            if let Ok(mut env) = tame_envs::make(&name) {
                exercise(env.as_mut());
                prop_assert!(tame_envs::spec(&name).is_ok());
            }
            let _ = tame_envs::transition_table(&name);
            let _ = tame_envs::time_limit(&name);
            let _ = tame_envs::make_vec(&name, 3, 0).map(|mut v| v.reset(1));
            Ok(())
        })
        .unwrap();
    eprintln!("env names: {} inputs", tried.get());
}

/// TOML lines a run config may hold, well- and ill-formed, with extreme values.
fn config_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "agent", "env", "tau", "seed", "steps", "eval_every", "eval_episodes", "threads", "[sac]", "[es]",
        "hidden", "learning_rate", "batch_size", "buffer_size", "gamma", "polyak", "initial_tau",
        "population", "sigma", "lr", "log_every", "regularizer", "bogus",
    ]);
    let value = prop::sample::select(vec![
        "\"sac\"", "\"es\"", "\"frozenlake\"", "\"pendulum:discrete=3\"", "\"auto\"", "0", "1", "-1", "7",
        "1e30", "1e-300", "inf", "nan", "9223372036854775807", "18446744073709551615", "[]", "[0]",
        "[4096, 4096, 4096]", "[100000]", "0.5", "\"kl_uniform\"", "true", "\"\"", "{}", "[[1]]",
    ]);
    (key, value).prop_map(|(k, v)| if k.starts_with('[') { k.to_string() } else { format!("{k} = {v}") })
}

#[test]
fn run_configs_never_panic_and_what_resolves_serializes() {
    let structured = prop::collection::vec(config_line(), 0..8).prop_map(|lines| lines.join("\n"));
    let text = prop_oneof![3 => structured, 1 => "\\PC{0,80}"];
    let tried = std::cell::Cell::new(0u32);
    runner(1000)
        .run(&text, |text| {
            tried.set(tried.get() + 1);
            if let Ok(cfg) = toml::from_str::<tame::run_dir::RunConfig>(&text) {
                if let Ok(resolved) = cfg.resolve() {
                    // Validated before anything is created: what resolves must also be saveable.
                    let saved = resolved.to_toml();
                    prop_assert!(saved.is_ok(), "{text:?} resolved but cannot be saved: {saved:?}");
                    prop_assert!(resolved.run_name().len() < 200);
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!("run configs: {} inputs", tried.get());
}

#[test]
fn sweep_files_never_panic() {
    let key = prop::sample::select(vec![
        "agent", "env", "taus", "sigmas", "seeds", "steps", "eval_every", "config", "threshold", "jobs", "out", "nope",
    ]);
    let value = prop::sample::select(vec![
        "\"sac\"", "\"frozenlake\"", "[0, 0.1, \"auto\"]", "[\"hot\"]", "[1e30]", "[-1]", "[[0]]", "[true]", "0",
        "3", "-3", "18446744073709551615", "1e-300", "\"x.toml\"", "[]", "nan",
    ]);
    let line = (key, value).prop_map(|(k, v)| format!("{k} = {v}"));
    let structured = prop::collection::vec(line, 0..6).prop_map(|l| l.join("\n"));
    let text = prop_oneof![3 => structured, 1 => "\\PC{0,80}"];
    let tried = std::cell::Cell::new(0u32);
    runner(1000)
        .run(&text, |text| {
            tried.set(tried.get() + 1);
            if let Ok(file) = tame::sweep::SweepFile::from_toml(&text) {
                if let Some(taus) = &file.taus {
                    let _ = tame::sweep::SweepFile::tau_specs(taus);
                }
            }
            let _ = serde_json::from_str::<tame::sweep::SweepPlan>(&text).map(|p| p.validate().map(|_| p.runs()));
            Ok(())
        })
        .unwrap();
    eprintln!("sweep files: {} inputs", tried.get());
}

/// A real event file: scalars, a histogram, text and hparams, flushed.
fn event_file_bytes(dir: &Path) -> Vec<u8> {
    let mut w = tame::tensorboard::EventWriter::create(dir).unwrap();
    for step in 0..20 {
        w.add_scalar("eval/mean_return", step, step as f64 * 0.5).unwrap();
    }
    w.add_histogram("h", 3, &[1.0, 2.0, 2.5]).unwrap();
    w.add_text("config", 0, "`tau = 0.1`").unwrap();
    w.write_hparams(&tame::tensorboard::HParams::new().with("tau", "0.1").metric("eval/mean_return")).unwrap();
    w.finish(tame::tensorboard::SessionStatus::Success).unwrap();
    let path = w.path().to_path_buf();
    drop(w);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

/// Mutations of a valid file: truncation, bit flips, overwritten spans, random bytes.
fn mutated(original: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = original.len();
    let (a, b, c) = (original.clone(), original.clone(), original);
    prop_oneof![
        (0..=n).prop_map(move |k| a[..k].to_vec()),
        prop::collection::vec((0..n, 0u8..8), 1..6).prop_map(move |flips| {
            let mut v = b.clone();
            for (i, bit) in flips {
                v[i] ^= 1 << bit;
            }
            v
        }),
        (0..n, prop::collection::vec(any::<u8>(), 1..16)).prop_map(move |(at, junk)| {
            let mut v = c.clone();
            for (k, x) in junk.into_iter().enumerate() {
                if let Some(slot) = v.get_mut(at + k) {
                    *slot = x;
                }
            }
            v
        }),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn tensorboard_event_files_never_panic() {
    let dir = scratch("events");
    let original = event_file_bytes(&dir);
    let path = dir.join("events.out.tfevents.1.fuzz");
    let tried = std::cell::Cell::new(0u32);
    runner(1000)
        .run(&mutated(original), |bytes| {
            tried.set(tried.get() + 1);
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(events) = tame::tensorboard::read_events(&path) {
                let _ = events.last_step();
            }
            Ok(())
        })
        .unwrap();
    eprintln!("event files: {} inputs", tried.get());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn checkpoints_never_panic() {
    use tame_agents::{es, sac};
    let dir = scratch("ckpt");
    let env = tame_envs::make("cartpole").unwrap();
    let (obs, act) = (env.observation_space(), env.action_space());
    let config = sac::SacConfig { hidden: vec![8], ..Default::default() };
    let tau = tame_agents::run::Tau::Auto;
    let rng = || rand::SeedableRng::seed_from_u64(0);
    let sac_path = dir.join("sac.safetensors");
    sac::SacAgent::new(&config, tau, &obs, &act, rng()).unwrap().save(&sac_path, 5).unwrap();
    let es_path = dir.join("es.safetensors");
    let factory: es::EnvFactory = std::sync::Arc::new(|| tame_envs::make("cartpole"));
    let es_cfg = es::EsConfig { population: 4, hidden: vec![4], threads: 1, ..Default::default() };
    es::Es::new(es_cfg, factory).unwrap().policy().save(&es_path).unwrap();

    let path = dir.join("fuzzed.safetensors");
    let tried = std::cell::Cell::new(0u32);
    for (original, is_sac) in [(std::fs::read(&sac_path).unwrap(), true), (std::fs::read(&es_path).unwrap(), false)] {
        runner(256)
            .run(&mutated(original), |bytes| {
                tried.set(tried.get() + 1);
                std::fs::write(&path, &bytes).unwrap();
                let result = if is_sac {
                    let mut agent = sac::SacAgent::new(&config, tau, &obs, &act, rng()).unwrap();
                    agent.load(&path).map(|_| ())
                } else {
                    es::EsPolicy::load(&path, &obs, &act).map(|_| ()).map_err(anyhow::Error::from)
                };
                if let Err(e) = result {
                    prop_assert!(!e.to_string().is_empty());
                }
                Ok(())
            })
            .unwrap();
    }
    eprintln!("checkpoints: {} inputs", tried.get());
    std::fs::remove_dir_all(&dir).ok();
}
