//! Bakes MuJoCo's library directory (MUJOCO_DYNAMIC_LINK_DIR, from .cargo/config.toml) into
//! the rpath of this crate's test binaries, so that they run without LD_LIBRARY_PATH.
fn main() {
    if let Ok(dir) = std::env::var("MUJOCO_DYNAMIC_LINK_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-env-changed=MUJOCO_DYNAMIC_LINK_DIR");
    println!("cargo:rerun-if-env-changed=TAME_MUJOCO_ASSETS");
}
