// After django-otp-webauthn registers a passkey: make recovery codes if the user has none
// yet, else show the page again with the new key listed (the form says which).
document.addEventListener("otp_webauthn.register_complete", () => {
  document.getElementById("after-passkey").submit();
});
