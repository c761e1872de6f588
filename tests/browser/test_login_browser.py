"""Signing in through the real login page."""


def test_it_signs_in_and_lands_on_the_feed(browser, asgi_server, transactional_db, django_user_model):
    django_user_model.objects.create_user("dana", password="dana-password-1")
    page = browser.new_page()
    page.goto(asgi_server + "/events/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "dana")
    page.fill("#id_password", "dana-password-1")
    page.click("button[type=submit]")
    page.wait_for_url("**/events/")
    assert page.locator("text=Sign out").is_visible()
    page.close()


def test_it_shows_a_form_error_for_a_wrong_password(browser, asgi_server, transactional_db, django_user_model):
    django_user_model.objects.create_user("dana", password="dana-password-1")
    page = browser.new_page()
    page.goto(asgi_server + "/accounts/login/")
    page.fill("#id_username", "dana")
    page.fill("#id_password", "nope")
    page.click("button[type=submit]")
    assert page.locator(".form-error").is_visible()
    page.close()
