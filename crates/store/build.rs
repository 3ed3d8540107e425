//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the folders'
//! files at compile time, and cargo would not otherwise see a new file.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
