#!/usr/bin/env python3
"""Drives Debian's chromium (headless, via chromium-driver and selenium) through a notice page.

  notice_browser.py --url URL --password P --wrong-password W --expect-text T --screenshot FILE

Opens the link, checks a wrong password is refused, signs in, checks the notice shows
--expect-text literally (escaped, not run as markup), acknowledges, saves a screenshot and
prints its path. Exit 0 when every check holds, 1 with the failed check otherwise.
"""
import argparse
import shutil
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def fail(message):
    print("FAILED: " + message)
    sys.exit(1)


def next_page_loaded(driver):
    """True once the marked page has been replaced by a new, fully loaded document."""
    try:
        return driver.execute_script(
            "return window.__encompassOldPage === undefined && document.readyState === 'complete'")
    except WebDriverException:
        return False  # the document is changing under the call; ask again


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--urn", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--wrong-password", required=True)
    parser.add_argument("--expect-text", required=True)
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    options = Options()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(120)
    try:
        driver.get(args.url)
        if driver.find_element(By.ID, "urn").text != args.urn:
            fail("sign-in page does not show URN " + args.urn)

        def submit(button_id):
            # Click, then wait for the next page to replace this one. The old page is marked
            # before the click; the next document has no mark. Errors while the page is being
            # replaced (chromedriver's "stale element", "cannot find context", "no such execution
            # context") are part of the navigation, so the wait polls again. On a loaded machine
            # (the whole suite runs in parallel on 2 cores) a click can land before the page is
            # ready to navigate: click once more if nothing happened, then wait longer.
            driver.execute_script("window.__encompassOldPage = true")
            driver.find_element(By.ID, button_id).click()
            try:
                WebDriverWait(driver, 20).until(next_page_loaded)
            except TimeoutException:
                try:
                    driver.find_element(By.ID, button_id).click()
                except WebDriverException:
                    pass  # the page changed meanwhile
                WebDriverWait(driver, 90).until(next_page_loaded)

        def sign_in(password):
            driver.find_element(By.ID, "name").send_keys("Ms Head (selenium)")
            driver.find_element(By.ID, "password").send_keys(password)
            submit("sign-in")

        sign_in(args.wrong_password)
        if "not right" not in driver.page_source or driver.find_elements(By.ID, "notice"):
            fail("a wrong password was not refused")

        sign_in(args.password)
        notice = driver.find_elements(By.ID, "notice")
        if not notice:
            fail("the right password did not show the notice")
        if args.expect_text not in notice[0].text:
            fail("the notice does not show %r as text: %r" % (args.expect_text, notice[0].text))
        if driver.title == "pwned" or driver.execute_script("return window.pwned === true"):
            fail("markup in a value ran as script")

        submit("acknowledge")
        if not driver.find_elements(By.ID, "acknowledged"):
            fail("acknowledging did not show the acknowledgement")
        driver.save_screenshot(args.screenshot)
        print("screenshot: " + args.screenshot)
        print("OK")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
