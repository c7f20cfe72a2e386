// After a launch, continue to the course page straight away; the button stays for
// people without JavaScript. The launch token travels in the form, never in a cookie.
document.getElementById("continue")?.submit();
