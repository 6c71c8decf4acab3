"""Agent-assisted pay sessions and Twilio's status callbacks (app label "payments")."""
