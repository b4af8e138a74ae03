"""Plumbing shared by ipop3d and imapd: transport, configuration, logging, limits."""
