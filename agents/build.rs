//! Bakes libtorch's directory into the `tame` binary's rpath, so it runs without
//! LD_LIBRARY_PATH. torch-sys exports the directory only to direct dependents. The same for
//! MuJoCo's library, whose directory .cargo/config.toml gives mujoco-rs.
fn main() {
    if let Ok(dir) = std::env::var("MUJOCO_DYNAMIC_LINK_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-env-changed=MUJOCO_DYNAMIC_LINK_DIR");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
