"""Who may use the admin (and the agent console): second factor, lockout, session lifetime.

docs/security.md describes the controls; this app holds their pages, models and admin.
"""
