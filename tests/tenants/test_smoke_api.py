def test_tenant_endpoint_answers_the_callers_tenant(world, api_for):
    response = api_for(world.acme.raw_key).get("/api/v1/tenant/")
    assert response.status_code == 200, response.content
    assert response.json()["slug"] == "acme"
