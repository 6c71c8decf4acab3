"""The landing page: where the admin's "View site" leads, and what a first run opens on."""

from django.shortcuts import render


def landing(request):
    return render(request, "landing.html")
