//! DVC compatibility with a real `dvc`: the `.dvc` file `wasmline` writes, committed to a git
//! repository whose DVC remote is our store's `dvc/` folder, lets `dvc pull` in a fresh clone
//! fetch exactly the bytes that were ingested, from a local-directory remote and from S3.

use std::path::Path;

use tests::examples_dir;
use tests::servers::S3sFs;

use crate::{Scratch, sh};

const GIT_IDENTITY: [&str; 4] = ["-c", "user.email=ci@wasmline.test", "-c", "user.name=Wasmline CI"];

/// Environment for git and dvc: no analytics, no global config or site cache outside the test.
fn tool_env(s: &Scratch) -> Vec<(String, String)> {
    let mut env = s.env.clone();
    env.extend(
        [
            ("DVC_NO_ANALYTICS", "1".to_owned()),
            ("DVC_SITE_CACHE_DIR", s.path().join("dvc-site").display().to_string()),
            ("HOME", s.path().display().to_string()),
            ("GIT_CONFIG_NOSYSTEM", "1".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    env
}

/// Makes a git + DVC repository with `remote` as its default remote (plus `settings`), writes the
/// wine data's `.dvc` file into it with `wasmline`, commits, clones, and runs `dvc pull` in the clone.
fn pull_through_dvc(s: &Scratch, store: &str, remote: &str, settings: &[&[&str]]) {
    let env = tool_env(s);
    let repo = s.path().join("repo");
    std::fs::create_dir_all(repo.join("data")).unwrap();
    sh(&repo, "git", &["init", "-q", "-b", "main"], &env);
    sh(&repo, "dvc", &["init", "-q"], &env);
    sh(&repo, "dvc", &["remote", "add", "-d", "store", remote], &env);
    for args in settings {
        sh(&repo, "dvc", args, &env);
    }
    let config = s.example_data_config("winequality", &Scratch::example_data("winequality"));
    let dvc_file = repo.join("data/winequality-red.csv.dvc");
    let out = s
        .run_with_store(
            store,
            &[
                "pipeline",
                "run",
                "--config",
                config.to_str().unwrap(),
                "--dvc-file",
                dvc_file.to_str().unwrap(),
            ],
        )
        .ok();
    assert!(out.contains("version 1"), "{out}");
    let text = std::fs::read_to_string(&dvc_file).unwrap();
    assert!(
        text.contains("hash: md5") && text.contains("path: winequality-red.csv"),
        "{text}"
    );
    std::fs::write(repo.join("data/.gitignore"), "/winequality-red.csv\n").unwrap();
    sh(&repo, "git", &["add", "-A"], &env);
    let mut commit = GIT_IDENTITY.to_vec();
    commit.extend(["commit", "-q", "-m", "data"]);
    sh(&repo, "git", &commit, &env);

    let clone = s.path().join("clone");
    sh(
        s.path(),
        "git",
        &["clone", "-q", repo.to_str().unwrap(), clone.to_str().unwrap()],
        &env,
    );
    assert!(!clone.join("data/winequality-red.csv").exists());
    sh(&clone, "dvc", &["pull", "-q"], &env);
    let pulled = std::fs::read(clone.join("data/winequality-red.csv")).unwrap();
    let original = std::fs::read(examples_dir().join("winequality/winequality-red.csv")).unwrap();
    assert!(pulled == original, "dvc pull reproduces the exact bytes");
    // DVC itself agrees the workspace matches the .dvc file.
    let status = sh(&clone, "dvc", &["status", "--json"], &env);
    assert_eq!(status.trim(), "{}", "dvc status is clean");
}

#[test]
fn dvc_pull_from_a_local_directory_remote() {
    let s = Scratch::new();
    let store = s.store();
    let remote = store.join("dvc");
    pull_through_dvc(&s, store.to_str().unwrap(), remote.to_str().unwrap(), &[]);
}

#[test]
fn dvc_pull_from_the_s3_store() {
    let s3 = S3sFs::start();
    let mut s = Scratch::new();
    s.env = s3.env();
    let store = format!("s3://{}/project", s3.bucket);
    let remote = format!("s3://{}/project/dvc", s3.bucket);
    pull_through_dvc(
        &s,
        &store,
        &remote,
        &[
            &["remote", "modify", "store", "endpointurl", &s3.endpoint],
            &["remote", "modify", "store", "region", "us-east-1"],
        ],
    );
    assert!(
        Path::new(&s3.data_dir)
            .join(&s3.bucket)
            .join("project/dvc/files/md5")
            .is_dir()
    );
}

#[test]
fn dvc_file_for_an_existing_version() {
    let s = Scratch::new();
    let config = s.example_data_config("winequality", &Scratch::example_data("winequality"));
    s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
    let out = s
        .run(&["datasets", "dvc-file", "winequality-red@1", "--out", "wine.csv.dvc"])
        .ok();
    assert!(out.contains("wrote wine.csv.dvc"), "{out}");
    let text = std::fs::read_to_string(s.path().join("wine.csv.dvc")).unwrap();
    let size = std::fs::metadata(examples_dir().join("winequality/winequality-red.csv"))
        .unwrap()
        .len();
    assert!(text.contains(&format!("size: {size}")), "{text}");
    let err = s
        .run(&["datasets", "dvc-file", "winequality-red@7", "--out", "x.dvc"])
        .fails();
    assert!(err.contains("dataset 'winequality-red' has no version 7"), "{err}");
    assert!(!s.path().join("x.dvc").exists());
}
