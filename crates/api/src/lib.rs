//! placeholder until built
