// OIDC response_mode=form_post: send the id_token on without a click (button if no JS).
document.getElementById("autopost")?.submit();
