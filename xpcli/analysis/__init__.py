"""Analysis: frames in, frames out. Nothing here prints or reads options."""
