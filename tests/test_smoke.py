from tests.helpers import open_status, receipt_of, state_of, submit


def test_anonymous_journey(client):
    response = submit(client)
    assert response.status_code == 200
    receipt, reference = receipt_of(response)
    assert reference.startswith("CR-")
    assert open_status(client, receipt).status_code == 303
    assert state_of(client.get("/status").get_data(as_text=True)) == "received"
