//! Rendering: frame sizes, pixels at the places the state puts things, and the gridworld
//! text mode against `ansi` frames recorded from Gymnasium 1.4.0
//! (`tests/fixtures/gymnasium/toy_text_ansi.json`, made by `record_ansi.py` there).

use tame_envs::render::Rgb;
use tame_envs::{make, Action, Env, Frame, RenderCtx, Trail};

const POLE: Rgb = [202, 152, 101];
const ROD: Rgb = [204, 77, 77];
const TORQUE: Rgb = [40, 120, 220];
const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const HOLE: Rgb = [24, 38, 74];
const GOAL: Rgb = [70, 180, 80];
const AGENT: Rgb = [220, 30, 30];
const PATH: Rgb = [245, 150, 40];
const CLIFF: Rgb = [150, 70, 40];

fn at(f: &Frame, x: f64, y: f64) -> Rgb {
    f.pixel(x.floor() as usize, y.floor() as usize).unwrap_or_else(|| panic!("({x}, {y}) is outside the frame"))
}

fn with_state(name: &str, state: &[f64]) -> Box<dyn Env> {
    let mut env = make(name).unwrap();
    let mut obs = vec![0.0; env.observation_space().dim()];
    env.reset(Some(0), &mut obs);
    env.set_state(state, &mut obs).unwrap();
    env
}

fn count(f: &Frame, c: Rgb) -> usize {
    f.rgb.chunks(3).filter(|p| *p == c).count()
}

#[test]
fn cartpole_pole_tip_is_where_the_state_says() {
    for (x, theta) in [(0.0, 0.0), (1.2, 0.15), (-2.0, -0.2), (0.5, 0.8)] {
        let f = with_state("cartpole", &[x, 0.3, theta, -0.1]).render_rgb(&RenderCtx::default()).unwrap();
        assert_eq!((f.width, f.height, f.rgb.len()), (300, 200, 300 * 200 * 3));
        // Axle 3.75 px above the cart's centre at (150 + 62.5 x, 150), pole 62.5 px long.
        let (ax, ay) = (150.0 + 62.5 * x, 146.25);
        let along = |d: f64| (ax + d * theta.sin(), ay - d * theta.cos());
        let (tx, ty) = along(60.5);
        assert_eq!(at(&f, tx, ty), POLE, "just inside the tip, x {x}, theta {theta}");
        let (tx, ty) = along(66.0);
        assert_eq!(at(&f, tx, ty), WHITE, "just past the tip, x {x}, theta {theta}");
        assert_eq!(at(&f, 150.0 + 62.5 * x, 152.0), BLACK, "the cart");
    }
}

#[test]
fn pendulum_rod_and_torque_arc_follow_state_and_action() {
    let theta: f64 = 1.0;
    let mut env = with_state("pendulum", &[theta, 0.0]);
    let none = env.render_rgb(&RenderCtx::default()).unwrap();
    assert_eq!((none.width, none.height), (250, 250));
    let l = 250.0 / 4.4;
    let tip = (125.0 - (l - 3.0) * theta.sin(), 125.0 - (l - 3.0) * theta.cos());
    assert_eq!(at(&none, tip.0, tip.1), ROD);
    let beyond = (125.0 - (l + 8.0) * theta.sin(), 125.0 - (l + 8.0) * theta.cos());
    assert_eq!(at(&none, beyond.0, beyond.1), WHITE);
    assert_eq!(count(&none, TORQUE), 0, "no action, no torque drawn");

    // u > 0 turns counter-clockwise from the bottom: the arc starts to the bottom's right.
    let r = 0.5 * l;
    let arc_point = |phi: f64| (125.0 + r * phi.cos(), 125.0 - r * phi.sin());
    let mut obs = [0.0f32; 3];
    for u in [2.0, -2.0] {
        env.set_state(&[std::f64::consts::PI, 0.0], &mut obs).unwrap(); // rod hanging down
        let ctx = RenderCtx { last_action: Some(Action::Continuous(&[u])), path: &[] };
        let f = env.render_rgb(&ctx).unwrap();
        let right = arc_point(-std::f64::consts::FRAC_PI_2 + 0.6);
        let left = arc_point(-std::f64::consts::FRAC_PI_2 - 0.6);
        let (on, off) = if u > 0.0 { (right, left) } else { (left, right) };
        assert_eq!(at(&f, on.0, on.1), TORQUE, "u = {u}");
        assert_eq!(at(&f, off.0, off.1), WHITE, "u = {u}");
    }
    // A smaller torque draws a shorter arc (|u|/2 of 240 degrees).
    let small = RenderCtx { last_action: Some(Action::Continuous(&[0.5])), path: &[] };
    let full = RenderCtx { last_action: Some(Action::Continuous(&[5.0])), path: &[] };
    let (fs, ff) = (env.render_rgb(&small).unwrap(), env.render_rgb(&full).unwrap());
    assert!(count(&fs, TORQUE) * 3 < count(&ff, TORQUE), "{} vs {}", count(&fs, TORQUE), count(&ff, TORQUE));
}

#[test]
fn discretized_pendulum_draws_the_torque_level_of_its_action() {
    let env = with_state("pendulum:discrete=5", &[0.0, 0.0]);
    let left = env.render_rgb(&RenderCtx { last_action: Some(Action::Discrete(0)), ..Default::default() }).unwrap();
    let middle = env.render_rgb(&RenderCtx { last_action: Some(Action::Discrete(2)), ..Default::default() }).unwrap();
    let cont = with_state("pendulum", &[0.0, 0.0]);
    let want = cont.render_rgb(&RenderCtx { last_action: Some(Action::Continuous(&[-2.0])), ..Default::default() }).unwrap();
    assert_eq!(left, want, "action 0 of 5 is torque -2");
    assert_eq!(count(&middle, TORQUE), 0, "action 2 of 5 is torque 0");
}

#[test]
fn mountaincar_car_sits_on_the_hill() {
    for p in [-1.1, -0.5, 0.0, 0.3] {
        let f = with_state("mountaincar", &[p, 0.0]).render_rgb(&RenderCtx::default()).unwrap();
        assert_eq!((f.width, f.height), (300, 200));
        let x = (p + 1.2) * 300.0 / 1.8;
        let road = 200.0 - ((3.0 * p).sin() * 0.45 + 0.55) * 300.0 / 1.8;
        let slope = 1.35 * (3.0 * p).cos();
        let n = (1.0 + slope * slope).sqrt();
        // The body's centre: 10 px (clearance 5 + half its height 5) along the road's normal.
        let (cx, cy) = (x - 10.0 * slope / n, road - 10.0 / n);
        assert_eq!(at(&f, cx, cy), BLACK, "car body at position {p}");
        assert_eq!(at(&f, x, road - 30.0), WHITE, "sky above the car at position {p}");
    }
}

#[test]
fn gridworld_cells_agent_and_path() {
    // FrozenLake 4x4: SFFF / FHFH / FFFH / HFFG, 32 px cells.
    let mut env = make("frozenlake-noslip").unwrap();
    let mut obs = [0.0f32];
    env.reset(Some(0), &mut obs);
    let mut trail = Trail::default();
    trail.reset(env.as_ref());
    for a in [1, 1, 2] {
        env.step(Action::Discrete(a), &mut obs).unwrap(); // down, down, right: cells 4, 8, 9
        trail.record(env.as_ref(), Action::Discrete(a));
    }
    let f = env.render_rgb(&trail.ctx()).unwrap();
    assert_eq!((f.width, f.height), (128, 128));
    let corner = |s: usize| ((s % 4) as f64 * 32.0 + 3.0, (s / 4) as f64 * 32.0 + 3.0);
    let centre = |s: usize| ((s % 4) as f64 * 32.0 + 16.0, (s / 4) as f64 * 32.0 + 16.0);
    for hole in [5, 7, 11, 12] {
        let (x, y) = corner(hole);
        assert_eq!(at(&f, x, y), HOLE, "hole cell {hole}");
    }
    let (x, y) = corner(15);
    assert_eq!(at(&f, x, y), GOAL);
    let (x, y) = centre(9);
    assert_eq!(at(&f, x, y), AGENT, "the agent is in cell 9");
    for visited in [0, 4, 8] {
        let (x, y) = centre(visited);
        assert_eq!(at(&f, x, y), PATH, "path through cell {visited}");
    }
    let (x, y) = centre(2);
    assert_ne!(at(&f, x, y), PATH, "cell 2 was never visited");

    let cliff = with_state("cliffwalking", &[0.0]).render_rgb(&RenderCtx::default()).unwrap();
    assert_eq!((cliff.width, cliff.height), (12 * 32, 4 * 32));
    assert_eq!(at(&cliff, 5.0 * 32.0 + 3.0, 3.0 * 32.0 + 3.0), CLIFF);
}

fn fixture() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gymnasium/toy_text_ansi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn ansi_replays_gymnasium_frames_step_for_step() {
    let fx = fixture();
    for (trace, env_name) in [("frozenlake4x4_noslip_goal", "frozenlake-noslip"), ("frozenlake4x4_noslip_hole", "frozenlake-noslip")] {
        let frames = fx[trace]["frames"].as_array().unwrap();
        let mut env = make(env_name).unwrap();
        let mut obs = [0.0f32];
        env.reset(Some(0), &mut obs);
        let mut trail = Trail::default();
        trail.reset(env.as_ref());
        assert_eq!(env.render_ansi(&trail.ctx()).unwrap(), frames[0]["ansi"].as_str().unwrap(), "{trace} after reset");
        for (i, frame) in frames.iter().enumerate().skip(1) {
            let a = frame["last_action"].as_u64().unwrap() as usize;
            let step = env.step(Action::Discrete(a), &mut obs).unwrap();
            trail.record(env.as_ref(), Action::Discrete(a));
            assert_eq!(step.terminated, frame["terminated"].as_bool().unwrap(), "{trace} step {i}");
            assert_eq!(env.render_ansi(&trail.ctx()).unwrap(), frame["ansi"].as_str().unwrap(), "{trace} step {i}");
        }
    }
}

#[test]
fn ansi_equals_gymnasium_in_every_recorded_state_of_the_slippery_8x8_lake() {
    // Slipping draws from a different generator here, so each recorded state is set.
    let fx = fixture();
    let frames = fx["frozenlake8x8_slippery"]["frames"].as_array().unwrap();
    let mut env = make("frozenlake8x8").unwrap();
    let mut obs = [0.0f32];
    env.reset(Some(0), &mut obs);
    for frame in frames {
        env.set_state(&[frame["state"].as_f64().unwrap()], &mut obs).unwrap();
        let action = frame["last_action"].as_u64().map(|a| Action::Discrete(a as usize));
        let text = env.render_ansi(&RenderCtx { last_action: action, path: &[] }).unwrap();
        assert_eq!(text, frame["ansi"].as_str().unwrap());
    }
}

#[test]
fn ansi_names_cliffwalking_actions_in_its_own_numbering_and_classic_control_has_none() {
    // CliffWalking: UP 0, RIGHT 1, DOWN 2, LEFT 3; the agent starts at row 3, column 0.
    let mut env = make("cliffwalking").unwrap();
    let mut obs = [0.0f32];
    env.reset(Some(0), &mut obs);
    env.step(Action::Discrete(0), &mut obs).unwrap();
    let text = env.render_ansi(&RenderCtx { last_action: Some(Action::Discrete(0)), path: &[] }).unwrap();
    assert_eq!(
        text,
        "  (Up)\nFFFFFFFFFFFF\nFFFFFFFFFFFF\n\x1b[41mF\x1b[0mFFFFFFFFFFF\nSCCCCCCCCCCG\n"
    );
    for name in ["cartpole", "pendulum", "mountaincar"] {
        assert!(make(name).unwrap().render_ansi(&RenderCtx::default()).is_none(), "{name}");
    }
}

#[test]
fn taxi_ansi_equals_gymnasium_in_every_state() {
    let fx = fixture();
    let frames = fx["taxi_every_state"]["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 500);
    let mut env = make("taxi").unwrap();
    let mut obs = [0.0f32];
    env.reset(Some(0), &mut obs);
    for frame in frames {
        let s = frame["state"].as_f64().unwrap();
        env.set_state(&[s], &mut obs).unwrap();
        let action = frame["last_action"].as_u64().map(|a| Action::Discrete(a as usize));
        let text = env.render_ansi(&RenderCtx { last_action: action, path: &[] }).unwrap();
        assert_eq!(text, frame["ansi"].as_str().unwrap(), "state {s}, last action {action:?}");
    }
}

/// Acrobot, 250×250: the pivot at the centre, 250/4.4 px per metre, links 1 m; θ = 0 hangs
/// straight down, the bar one link length above the pivot.
#[test]
fn acrobot_links_hang_from_the_pivot_as_the_angles_say() {
    const LINK: Rgb = [0, 204, 204];
    let scale = 250.0 / 4.4;
    let c = 125.0;
    let down = with_state("acrobot", &[0.0, 0.0, 0.0, 0.0]).render_rgb(&RenderCtx::default()).unwrap();
    assert_eq!((down.width, down.height), (250, 250));
    assert_eq!(at(&down, c, c + 0.5 * scale), LINK, "first link below the pivot");
    assert_eq!(at(&down, c, c + 1.5 * scale), LINK, "second link below the first");
    assert_eq!(at(&down, c, c - 0.5 * scale), WHITE, "nothing above the pivot");
    assert_eq!(at(&down, c + 1.5 * scale, c - scale), BLACK, "the bar to clear");
    // First link up, second bent a right angle: the elbow at (c, c − L), the tip to its side.
    let bent = with_state("acrobot", &[std::f64::consts::PI, std::f64::consts::FRAC_PI_2, 0.0, 0.0])
        .render_rgb(&RenderCtx::default())
        .unwrap();
    assert_eq!(at(&bent, c, c - 0.5 * scale), LINK);
    assert_eq!(at(&bent, c, c + 0.5 * scale), WHITE);
    // θ1 + θ2 = 3π/2: sin = −1, cos = 0, so the second link points to screen-left.
    assert_eq!(at(&bent, c - 0.5 * scale, c - scale), LINK, "second link at the elbow's side");
    assert_eq!(at(&bent, c + 0.5 * scale, c - scale), BLACK, "only the bar on the other side");
}

/// MountainCar-v0 draws the continuous task's hill and car, its flag at its own goal (0.5,
/// against 0.45).
#[test]
fn discrete_mountaincar_draws_the_same_car_and_its_own_flag() {
    let screen = |p: f64| ((p + 1.2) * 300.0 / 1.8, 200.0 - ((3.0 * p).sin() * 0.45 + 0.55) * 300.0 / 1.8);
    for p in [-1.1, -0.5, 0.3] {
        let a = with_state("mountaincar", &[p, 0.0]).render_rgb(&RenderCtx::default()).unwrap();
        let b = with_state("mountaincar-discrete", &[p, 0.0]).render_rgb(&RenderCtx::default()).unwrap();
        let (x, road) = screen(p);
        for dy in [5.0, 10.0, 15.0] {
            assert_eq!(at(&a, x, road - dy), at(&b, x, road - dy), "the car at position {p}");
        }
        for (f, goal, other) in [(&a, 0.45, 0.5), (&b, 0.5, 0.45)] {
            // The pole is 1 px wide: look one pixel either side.
            let pole = |p: f64| {
                let (px, py) = screen(p);
                [-1.0, 0.0, 1.0].iter().any(|dx| at(f, px + dx, py - 10.0) == BLACK)
            };
            assert!(pole(goal), "flag pole at {goal}");
            assert!(!pole(other), "no pole at {other}");
        }
    }
}

/// Taxi, 5×5 cells of 32 px: the locations R (0,0), G (0,4), Y (4,0), B (4,3); state
/// ((row·5 + col)·5 + passenger)·4 + destination, passenger 4 = aboard.
#[test]
fn taxi_draws_the_taxi_passenger_and_destination() {
    const TAXI: Rgb = [230, 180, 0];
    const TAXI_FULL: Rgb = [0, 170, 0];
    const DEST: Rgb = [200, 0, 200];
    const RED: Rgb = [255, 0, 0];
    let centre = |r: usize, c: usize| (c as f64 * 32.0 + 16.0, r as f64 * 32.0 + 18.0);
    // Taxi at (2, 3), passenger waiting at R, bound for Y.
    let f = with_state("taxi", &[(((2 * 5 + 3) * 5) * 4 + 2) as f64]).render_rgb(&RenderCtx::default()).unwrap();
    assert_eq!((f.width, f.height), (160, 160));
    let (x, y) = centre(2, 3);
    assert_eq!(at(&f, x, y), TAXI);
    assert_eq!(at(&f, 16.0, 16.0), RED, "the passenger at R");
    assert_eq!(at(&f, 1.0, 4.0 * 32.0 + 16.0), DEST, "Y's cell (row 4, column 0) is outlined");
    assert_ne!(at(&f, 1.0 + 4.0 * 32.0, 16.0), DEST, "G's is not");
    // Passenger aboard: the taxi turns green and no one waits at R.
    let aboard = with_state("taxi", &[(((2 * 5 + 3) * 5 + 4) * 4 + 2) as f64]).render_rgb(&RenderCtx::default()).unwrap();
    assert_eq!(at(&aboard, x, y), TAXI_FULL);
    assert_ne!(at(&aboard, 16.0, 16.0), RED);
}

/// Blackjack, 220×180: the dealer's card with one pip per point, the player's sum as filled
/// slots 6.5 px apart from x = 10.
#[test]
fn blackjack_shows_the_dealers_card_and_the_players_sum() {
    const SLOT_EMPTY: Rgb = [150, 170, 120];
    // [player sum (aces as 1), has ace, cards, dealer card, hidden card]: 15 against a 6.
    let f = with_state("blackjack", &[15.0, 0.0, 2.0, 6.0, 10.0]).render_rgb(&RenderCtx::default()).unwrap();
    assert_eq!((f.width, f.height), (220, 180));
    let slot = |i: usize| 10.0 + 6.5 * i as f64 + 2.5;
    assert_eq!(at(&f, slot(14), 100.0), BLACK, "slot 15 filled");
    assert_eq!(at(&f, slot(15), 100.0), SLOT_EMPTY, "slot 16 empty");
    // Six pips in two columns of three on the dealer's card at (60, 10).
    let pips = (0..6).filter(|&i| at(&f, 60.0 + 12.0 + 16.0 * (i % 2) as f64, 10.0 + 8.0 + 8.0 * (i / 2) as f64) == BLACK).count();
    assert_eq!(pips, 6);
    assert_eq!(at(&f, 72.0, 10.0 + 8.0 + 8.0 * 3.0), WHITE, "no seventh pip");
    // A bust shows red beyond 21.
    let bust = with_state("blackjack", &[25.0, 0.0, 3.0, 6.0, 10.0]).render_rgb(&RenderCtx::default()).unwrap();
    assert_eq!(at(&bust, slot(22), 100.0), [200, 0, 0]);
}
