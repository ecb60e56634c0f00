//! Policy maps from a real (tiny) gridworld sweep: `tame sweep` writes `policy_maps.png`
//! with a learned and an exact map per τ; τ = 0 maps hold one arrow per cell, soft ones
//! spread over every action.

use std::path::Path;
use std::process::Command;

use tame::policy_map::sweep_policy_maps;
use tame::sweep::SweepPlan;

fn one_hot(p: &[f64]) -> bool {
    p.iter().filter(|&&x| x == 1.0).count() == 1 && p.iter().all(|&x| x == 0.0 || x == 1.0)
}

#[test]
fn sweep_on_a_gridworld_writes_policy_maps_hard_and_soft() {
    let out = std::env::temp_dir().join(format!("tame-policy-map-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO_BIN_EXE_tame"))
        .args(["sweep", "--agent", "es", "--env", "frozenlake-noslip", "--taus", "0,1", "--seeds", "1"])
        .args(["--steps", "20000", "--jobs", "1", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    // Two columns (τ 0 and 1), learned above exact; 4x4 cells of 64 px in 296x316 panels.
    let png = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(out.join("policy_maps.png")).unwrap()));
    let info = png.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (2 * 296, 2 * 316));

    let plan: SweepPlan = serde_json::from_slice(&std::fs::read(out.join("sweep.json")).unwrap()).unwrap();
    let (layout, columns) = sweep_policy_maps(&plan, &plan.envs[0], Path::new(&out)).unwrap().expect("a gridworld has maps");
    assert_eq!(layout.cells.iter().collect::<String>(), "SFFFFHFHFFFHHFFG");
    assert_eq!(columns.len(), 2);
    for (i, (learned, exact)) in columns.iter().enumerate() {
        for panel in [learned, exact] {
            let probs = panel.probs.as_ref().unwrap_or_else(|| panic!("{} has no map", panel.title));
            for (s, p) in probs.iter().enumerate() {
                let terminal = matches!(layout.cells[s], 'H' | 'G');
                assert_eq!(p.is_none(), terminal, "{}: cell {s}", panel.title);
                let Some(p) = p else { continue };
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{}: cell {s} {p:?}", panel.title);
                if i == 0 {
                    assert!(one_hot(p), "{}: τ = 0 is one arrow per cell, cell {s} {p:?}", panel.title);
                } else {
                    assert!(p.iter().all(|&x| x > 0.0), "{}: τ = 1 spreads, cell {s} {p:?}", panel.title);
                }
            }
        }
    }
    assert!(columns[0].0.title.contains("τ = 0 (hard)") && columns[1].1.title.contains("exact π*_τ"));
    let _ = std::fs::remove_dir_all(&out);
}
