from dataclasses import dataclass

import pytest
import requests

from connectors.services import connector_stripe_secret_key


@dataclass
class Desk:
    """Paydesk served by live_server, wired to the Twilio Pay simulator and localstripe."""

    sim: object
    stripe_url: str
    world: object

    def register(self, tw) -> None:
        self.sim.register_account(
            tw.tenant.twilio_account_sid,
            tw.auth_token,
            {
                name: {"stripe_secret_key": connector_stripe_secret_key(connector=c)}
                for name, c in tw.connectors.items()
            },
        )

    def stripe_get(self, path: str) -> dict:
        response = requests.get(self.stripe_url + path, auth=("sk_test_x", ""), timeout=5)
        response.raise_for_status()
        return response.json()


@pytest.fixture
def desk(world, twilio_sim, localstripe, live_server, settings) -> Desk:
    settings.TWILIO_API_BASE_URL = twilio_sim.url
    settings.STRIPE_API_BASE_URL = localstripe
    settings.PAYDESK_PUBLIC_BASE_URL = live_server.url
    desk = Desk(sim=twilio_sim, stripe_url=localstripe, world=world)
    desk.register(world.acme)
    desk.register(world.globex)
    return desk
