//! `trellis serve` with the API role and no signing key exits at once with a clear message
//! (security finding: a default key in the public source let anyone forge tokens).

use std::process::Command;

fn serve(env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
    command
        .args(["serve", "--roles", "api"])
        .env_remove("TRELLIS_JWT_SECRET")
        .env_remove("TRELLIS_DEV_MODE")
        .env_remove("TRELLIS_CONFIG")
        .env_remove("KAFKA_BROKERS")
        // Nothing listens there: the process must stop before it even tries.
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:9/none");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the trellis binary runs")
}

#[test]
fn serve_without_a_secret_exits_naming_the_variable() {
    let output = serve(&[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TRELLIS_JWT_SECRET is not set"), "{stderr}");
    assert!(stderr.contains("TRELLIS_DEV_MODE"), "{stderr}");
}

#[test]
fn serve_with_a_weak_secret_exits_naming_the_variable() {
    let output = serve(&[(
        "TRELLIS_JWT_SECRET",
        "trellis-development-secret-change-me-0123456789",
    )]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TRELLIS_JWT_SECRET"), "{stderr}");
    assert!(stderr.contains("does not look random"), "{stderr}");
}
