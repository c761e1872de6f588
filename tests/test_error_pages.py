"""The app's own error pages (shown with DEBUG off, as quickstart and production run)."""

from __future__ import annotations

from django.test import RequestFactory
from django.views.defaults import page_not_found, server_error


def test_it_answers_500_with_its_own_page():
    response = server_error(RequestFactory().get("/events/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html and 'href="/events/"' in html


def test_it_answers_404_with_its_own_page(db):
    request = RequestFactory().get("/no/such/page")
    response = page_not_found(request, Exception("nope"))
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
