//! What each built-in env draws: classic-control scenes laid out like Gymnasium's (at half
//! its size, so that GIFs stay small) and gridworld cells, plus the gridworld text mode.
//!
//! Geometry, in pixels with y pointing down (tests compute positions from it):
//! - CartPole, 300×200: 62.5 px per metre (the track's ±2.4 m span the width), track and cart
//!   centre at y = 150, cart 25×15, axle 3.75 px above the cart's centre, pole 62.5 px long
//!   (2 × half-length 0.5 m), 5 px wide: its tip is at (150 + 62.5·x + 62.5·sin θ,
//!   146.25 − 62.5·cos θ).
//! - Pendulum, 250×250: pivot at the centre, 250/4.4 px per metre, rod 1 m long and 0.2 m
//!   wide, tip at (125 − L·sin θ, 125 − L·cos θ) (θ = 0 upright); the applied torque u is an
//!   arc of radius 0.5 m from the bottom, counter-clockwise for u > 0 (the direction θ
//!   grows), spanning |u|/2 · 240°.
//! - MountainCarContinuous, 300×200: 300/1.8 px per unit of position from −1.2, the hill
//!   h(p) = 0.45·sin 3p + 0.55 drawn up from the bottom edge, the flag at p = 0.45, the car a
//!   20×10 body 5 px above the road, tilted with the slope.
//! - Gridworlds: 32 px cells, row-major from the top left; the path so far joins the
//!   visited cells' centres, the agent is a disc at its cell's centre.

use std::f64::consts::PI;

use crate::render::{cell_colour, colour, Frame, RenderCtx};
use crate::Action;

pub(crate) const CP_SIZE: (usize, usize) = (300, 200);
const CP_SCALE: f64 = 300.0 / 4.8;
const CP_TRACK_Y: f64 = 150.0;

/// CartPole at cart position `x` and pole angle `theta`.
pub(crate) fn cartpole(x: f64, theta: f64) -> Frame {
    let (w, h) = CP_SIZE;
    let mut f = Frame::new(w, h, colour::WHITE);
    f.fill_rect(0.0, CP_TRACK_Y - 0.5, w as f64, CP_TRACK_Y + 0.5, colour::BLACK);
    let cx = w as f64 / 2.0 + CP_SCALE * x;
    let (cart_w, cart_h) = (25.0, 15.0);
    f.fill_rect(cx - cart_w / 2.0, CP_TRACK_Y - cart_h / 2.0, cx + cart_w / 2.0, CP_TRACK_Y + cart_h / 2.0, colour::BLACK);
    let axle = (cx, CP_TRACK_Y - cart_h / 4.0);
    let len = CP_SCALE; // the pole's full length, 2 × 0.5 m
    let tip = (axle.0 + len * theta.sin(), axle.1 - len * theta.cos());
    // Square ends: the pole is a thin rectangle, so its tip is exactly where the state says.
    let (ux, uy) = (theta.sin(), -theta.cos());
    let (nx, ny) = (-uy * 2.5, ux * 2.5);
    f.fill_convex(
        &[(axle.0 + nx, axle.1 + ny), (tip.0 + nx, tip.1 + ny), (tip.0 - nx, tip.1 - ny), (axle.0 - nx, axle.1 - ny)],
        colour::POLE,
    );
    f.fill_circle(axle.0, axle.1, 2.5, colour::AXLE);
    f
}

pub(crate) const PD_SIZE: usize = 250;
const PD_SCALE: f64 = 250.0 / 4.4;

/// Pendulum at angle `theta` with the applied torque `u` (clipped to ±2) drawn as an arc.
pub(crate) fn pendulum(theta: f64, u: f64) -> Frame {
    let mut f = Frame::new(PD_SIZE, PD_SIZE, colour::WHITE);
    let c = PD_SIZE as f64 / 2.0;
    if u != 0.0 {
        let r = 0.5 * PD_SCALE;
        let span = u.abs() / 2.0 * (240.0f64).to_radians();
        let dir = u.signum();
        // Screen angle φ measured counter-clockwise from +x with y up; the arc starts at the
        // bottom (φ = −π/2).
        let at = |phi: f64| (c + r * phi.cos(), c - r * phi.sin());
        let n = 48;
        let start = -PI / 2.0;
        let end = start + dir * span;
        let head = 10.0f64.min(span * r);
        let shaft_end = end - dir * head / r;
        for i in 0..n {
            let p0 = start + (shaft_end - start) * i as f64 / n as f64;
            let p1 = start + (shaft_end - start) * (i + 1) as f64 / n as f64;
            f.line(at(p0), at(p1), 3.0, colour::TORQUE);
        }
        f.arrow(at(shaft_end), at(end), 0.0, head, colour::TORQUE);
    }
    let len = PD_SCALE;
    let tip = (c - len * theta.sin(), c - len * theta.cos());
    f.line((c, c), tip, 0.2 * PD_SCALE, colour::ROD);
    f.fill_circle(c, c, 0.05 * PD_SCALE, colour::BLACK);
    f
}

pub(crate) const MC_SIZE: (usize, usize) = (300, 200);
const MC_MIN: f64 = -1.2;
const MC_SCALE: f64 = 300.0 / 1.8;

fn hill(p: f64) -> f64 {
    (3.0 * p).sin() * 0.45 + 0.55
}

/// Screen point of position `p` on the road, and the road's unit tangent there.
fn road(p: f64) -> ((f64, f64), (f64, f64)) {
    let h = MC_SIZE.1 as f64;
    let pt = ((p - MC_MIN) * MC_SCALE, h - hill(p) * MC_SCALE);
    // dh/dp = 1.35 cos 3p; both axes share the scale, so the screen slope is the same.
    let slope = 1.35 * (3.0 * p).cos();
    let norm = (1.0 + slope * slope).sqrt();
    (pt, (1.0 / norm, -slope / norm))
}

/// MountainCar with the car at `position`.
pub(crate) fn mountaincar(position: f64, goal: f64) -> Frame {
    let (w, h) = MC_SIZE;
    let mut f = Frame::new(w, h, colour::WHITE);
    for x in 0..w {
        let p = MC_MIN + (x as f64 + 0.5) / MC_SCALE;
        let top = h as f64 - hill(p) * MC_SCALE;
        f.fill_rect(x as f64, top, x as f64 + 1.0, h as f64, [225, 225, 225]);
        f.fill_rect(x as f64, top - 1.0, x as f64 + 1.0, top + 1.0, colour::HILL);
    }
    let (flag, _) = road(goal);
    f.fill_rect(flag.0 - 0.5, flag.1 - 25.0, flag.0 + 0.5, flag.1, colour::BLACK);
    f.fill_convex(&[(flag.0 + 0.5, flag.1 - 25.0), (flag.0 + 0.5, flag.1 - 15.0), (flag.0 + 13.0, flag.1 - 20.0)], colour::FLAG);
    let ((rx, ry), (tx, ty)) = road(position);
    let (nx, ny) = (ty, -tx); // the road's normal, pointing up on screen
    let (half_w, body_h, clearance) = (10.0, 10.0, 5.0);
    let at = |along: f64, up: f64| (rx + tx * along + nx * up, ry + ty * along + ny * up);
    f.fill_convex(
        &[at(-half_w, clearance), at(half_w, clearance), at(half_w, clearance + body_h), at(-half_w, clearance + body_h)],
        colour::BLACK,
    );
    for side in [-1.0, 1.0] {
        let (wx, wy) = at(side * half_w * 0.6, clearance);
        f.fill_circle(wx, wy, 3.0, [128, 128, 128]);
    }
    f
}

pub(crate) const AC_SIZE: usize = 250;
const AC_SCALE: f64 = 250.0 / 4.4;

/// Acrobot at joint angles `theta1` (from hanging down) and `theta2` (relative to link 1):
/// the pivot at the centre, links 1 m long and 0.2 m wide, joints as discs, and the line
/// the tip must rise above (one link length above the pivot).
pub(crate) fn acrobot(theta1: f64, theta2: f64) -> Frame {
    let mut f = Frame::new(AC_SIZE, AC_SIZE, colour::WHITE);
    let c = AC_SIZE as f64 / 2.0;
    f.fill_rect(c - 2.2 * AC_SCALE, c - AC_SCALE - 0.5, c + 2.2 * AC_SCALE, c - AC_SCALE + 0.5, colour::BLACK);
    // θ = 0 hangs straight down; screen y points down.
    let p1 = (c + AC_SCALE * theta1.sin(), c + AC_SCALE * theta1.cos());
    let a2 = theta1 + theta2;
    let p2 = (p1.0 + AC_SCALE * a2.sin(), p1.1 + AC_SCALE * a2.cos());
    for (from, to) in [((c, c), p1), (p1, p2)] {
        f.line(from, to, 0.2 * AC_SCALE, [0, 204, 204]);
        f.fill_circle(from.0, from.1, 0.1 * AC_SCALE, [204, 204, 0]);
    }
    f
}

/// Side of a gridworld cell in pixels.
pub(crate) const CELL: f64 = 32.0;

/// A gridworld of cells with map letters `cells` (`S`, `F`, `H`, `G`, `C`, `W`) in `ncol`
/// columns, the agent in `agent`.
pub(crate) fn grid(cells: &[char], ncol: usize, agent: usize, path: &[usize]) -> Frame {
    let nrow = cells.len() / ncol;
    let mut f = Frame::new(ncol * CELL as usize, nrow * CELL as usize, colour::GRID);
    let centre = |s: usize| (((s % ncol) as f64 + 0.5) * CELL, ((s / ncol) as f64 + 0.5) * CELL);
    for (s, letter) in cells.iter().enumerate() {
        let (x, y) = ((s % ncol) as f64 * CELL, (s / ncol) as f64 * CELL);
        // One grid-coloured pixel between cells.
        f.fill_rect(x + 1.0, y + 1.0, x + CELL, y + CELL, cell_colour(*letter));
    }
    for pair in path.windows(2) {
        f.line(centre(pair[0]), centre(pair[1]), 3.0, colour::PATH);
    }
    for &s in path {
        let (x, y) = centre(s);
        f.fill_circle(x, y, 3.0, colour::PATH);
    }
    let (x, y) = centre(agent);
    f.fill_circle(x, y, 0.3 * CELL, colour::AGENT);
    f
}

/// Gymnasium's FrozenLake `ansi` text: the last action's name in parentheses (an empty line
/// after reset), then the map with the agent's cell on a red background. Every gridworld
/// prints this way (CliffWalking and maps too, with their `C` and `W` letters), so that the
/// last action always shows.
pub(crate) fn grid_ansi(cells: &[char], ncol: usize, agent: usize, action_names: &[&str; 4], ctx: &RenderCtx<'_>) -> String {
    let mut out = String::new();
    match ctx.last_action {
        Some(Action::Discrete(a)) if a < 4 => out.push_str(&format!("  ({})\n", action_names[a])),
        _ => out.push('\n'),
    }
    for (s, letter) in cells.iter().enumerate() {
        if s == agent {
            out.push_str(&format!("\x1b[41m{letter}\x1b[0m"));
        } else {
            out.push(*letter);
        }
        if s % ncol == ncol - 1 {
            out.push('\n');
        }
    }
    out
}

/// Taxi's location colours (Red, Green, Yellow, Blue), as Gymnasium paints them.
pub(crate) const TAXI_COLOURS: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [255, 255, 0], [0, 0, 255]];

/// Taxi in state `s`: 5×5 cells of 32 px, the four locations filled with their colours
/// (dimmed), walls as black bars, the destination framed in magenta, a waiting passenger as
/// a disc in its location's colour, and the taxi as a yellow box (green with the passenger).
pub(crate) fn taxi(s: usize) -> Frame {
    use crate::taxi::{decode, TAXI_LOCS, TAXI_MAP};
    let n = 5usize;
    let mut f = Frame::new(n * CELL as usize, n * CELL as usize, [200, 200, 200]);
    let corner = |(r, c): (usize, usize)| (c as f64 * CELL, r as f64 * CELL);
    for r in 0..n {
        for c in 0..n {
            let (x, y) = corner((r, c));
            f.fill_rect(x + 1.0, y + 1.0, x + CELL, y + CELL, [235, 235, 235]);
        }
    }
    for (i, &loc) in TAXI_LOCS.iter().enumerate() {
        let (x, y) = corner(loc);
        let dim = TAXI_COLOURS[i].map(|v| (v as u16 / 2 + 100) as u8);
        f.fill_rect(x + 1.0, y + 1.0, x + CELL, y + CELL, dim);
    }
    // A '|' between columns c and c + 1 of a row is a wall.
    for r in 0..n {
        for c in 0..n - 1 {
            if TAXI_MAP[1 + r].as_bytes()[2 * c + 2] == b'|' {
                let x = (c + 1) as f64 * CELL;
                f.fill_rect(x - 2.0, r as f64 * CELL, x + 2.0, (r + 1) as f64 * CELL, colour::BLACK);
            }
        }
    }
    let (row, col, pass, dest) = decode(s);
    let (dx, dy) = corner(TAXI_LOCS[dest]);
    for (x0, y0, x1, y1) in [(0.0, 0.0, CELL, 3.0), (0.0, CELL - 3.0, CELL, CELL), (0.0, 0.0, 3.0, CELL), (CELL - 3.0, 0.0, CELL, CELL)] {
        f.fill_rect(dx + x0, dy + y0, dx + x1, dy + y1, [200, 0, 200]);
    }
    let (tx, ty) = corner((row, col));
    let body = if pass == 4 { [0, 170, 0] } else { [230, 180, 0] };
    f.fill_rect(tx + 6.0, ty + 10.0, tx + CELL - 6.0, ty + CELL - 8.0, body);
    if pass < 4 {
        let (px, py) = corner(TAXI_LOCS[pass]);
        f.fill_circle(px + CELL / 2.0, py + CELL / 2.0, 6.0, colour::BLACK);
        f.fill_circle(px + CELL / 2.0, py + CELL / 2.0, 4.5, TAXI_COLOURS[pass]);
    }
    f
}

pub(crate) const BJ_SIZE: (usize, usize) = (220, 180);

/// A card at (x, y), 40×56 px, with `value` pips (an ace one large pip).
fn card(f: &mut Frame, x: f64, y: f64, value: u8) {
    f.fill_rect(x, y, x + 40.0, y + 56.0, colour::BLACK);
    f.fill_rect(x + 1.0, y + 1.0, x + 39.0, y + 55.0, colour::WHITE);
    if value == 1 {
        f.fill_circle(x + 20.0, y + 28.0, 8.0, [180, 0, 0]);
        return;
    }
    for i in 0..value as usize {
        let (cx, cy) = (x + 12.0 + 16.0 * (i % 2) as f64, y + 8.0 + 8.0 * (i / 2) as f64);
        f.fill_circle(cx, cy, 3.0, colour::BLACK);
    }
}

/// Blackjack on Gymnasium's green felt: the dealer's face-up card (pips) beside the face-down
/// one at the top; below, the player's sum as 21 slots (filled up to the sum, red beyond 21)
/// and, with a usable ace, an ace card.
pub(crate) fn blackjack(sum: u8, up: u8, usable_ace: bool) -> Frame {
    let (w, _) = BJ_SIZE;
    let mut f = Frame::new(w, BJ_SIZE.1, [196, 216, 158]);
    card(&mut f, 60.0, 10.0, up);
    f.fill_rect(110.0, 10.0, 150.0, 66.0, colour::BLACK);
    f.fill_rect(111.0, 11.0, 149.0, 65.0, [40, 60, 150]);
    for i in 0..31u8 {
        let x = 10.0 + 6.5 * i as f64;
        let c = if i < sum.min(21) { colour::BLACK } else if i < sum { [200, 0, 0] } else { [150, 170, 120] };
        f.fill_rect(x, 90.0, x + 5.0, 110.0, c);
    }
    f.fill_rect(10.0 + 6.5 * 21.0 - 1.0, 86.0, 10.0 + 6.5 * 21.0, 114.0, [200, 0, 0]);
    if usable_ace {
        card(&mut f, 10.0, 100.0 + 16.0 - 2.0, 1);
    }
    f
}
