package provider

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rampart-ml/rampart/internal/audit"
	"github.com/rampart-ml/rampart/internal/httpapi"
	"github.com/rampart-ml/rampart/internal/identity"
	"github.com/rampart-ml/rampart/internal/identity/bruteforce"
	"github.com/rampart-ml/rampart/internal/store"
)

// The login and device pages are plain HTML forms: no script, no external
// resources, framing refused, and a double-submit CSRF cookie so another
// site cannot log a victim's browser into an attacker's account.

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Rampart – {{.Title}}</title>
<style>body{font-family:sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}
label{display:block;margin-top:1rem}input{width:100%;padding:.4rem;box-sizing:border-box}
button{margin-top:1.2rem;padding:.5rem 1rem}.err{color:#b00020}.note{color:#555}</style></head>
<body><h1>{{.Title}}</h1>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
{{if .Message}}<p class="note">{{.Message}}</p>{{else}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{if .RequestID}}<input type="hidden" name="authRequestID" value="{{.RequestID}}">{{end}}
{{if .Device}}<label>Code shown on your device<input name="user_code" value="{{.UserCode}}" autocomplete="off" required></label>{{end}}
<label>User name<input name="username" value="{{.Username}}" autocomplete="username" required></label>
<label>Password<input name="password" type="password" autocomplete="current-password" required></label>
<label>One-time code (if you use an authenticator app)<input name="otp" inputmode="numeric" autocomplete="one-time-code"></label>
{{if .Device}}<button name="action" value="approve">Approve</button> <button name="action" value="deny">Deny</button>
{{else}}<button>Log in</button>{{end}}
</form>{{end}}</body></html>`))

type pageData struct {
	Title, Error, Message, Action, CSRF, RequestID, UserCode, Username string
	Device                                                             bool
}

const csrfCookie = "rampart_csrf"

func (p *Provider) render(w http.ResponseWriter, status int, d pageData) error {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	return pageTemplate.Execute(w, d)
}

// newCSRF sets a fresh CSRF cookie for path and returns its value.
func (p *Provider) newCSRF(w http.ResponseWriter, path string) string {
	v := rand.Text()
	// #nosec G124 -- Secure is off only with --insecure-http, where a
	// Secure cookie would never be sent back.
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: v, Path: path, HttpOnly: true, Secure: !p.opt.Insecure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(pendingRequestTTL / time.Second),
	})
	return v
}

func checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	form := r.PostFormValue("csrf")
	return err == nil && form != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) == 1
}

// loginError turns a login failure into a message for the person at the
// keyboard; it never says whether the account exists.
func loginError(err error) (int, string) {
	var rl *identity.RateLimitedError
	switch {
	case errors.Is(err, identity.ErrInvalidCredentials):
		return http.StatusUnauthorized, "Invalid user name, password or one-time code."
	case errors.Is(err, identity.ErrSecondFactorRequired):
		return http.StatusUnauthorized, "Enter the one-time code from your authenticator app."
	case errors.As(err, &rl):
		return http.StatusTooManyRequests, rl.Error()
	case errors.Is(err, bruteforce.ErrBusy):
		return http.StatusServiceUnavailable, "The server is busy; try again in a moment."
	case errors.Is(err, audit.ErrWrite):
		return http.StatusServiceUnavailable, "The server cannot record logins right now, so none can happen; try again later."
	default:
		return http.StatusInternalServerError, "Login failed because of a server error."
	}
}

func (p *Provider) loginPage(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("authRequestID")
	if _, ok := p.requests.get(id); !ok {
		return p.render(w, http.StatusBadRequest, pageData{Title: "Log in", Error: "This login request is unknown or has expired. Start again from your application."})
	}
	return p.render(w, http.StatusOK, pageData{Title: "Log in", Action: loginPath, CSRF: p.newCSRF(w, loginPath), RequestID: id})
}

func (p *Provider) loginSubmit(w http.ResponseWriter, r *http.Request) error {
	id := r.PostFormValue("authRequestID")
	if !checkCSRF(r) {
		return p.render(w, http.StatusForbidden, pageData{Title: "Log in", Error: "The form expired or was not sent from this page. Start again from your application."})
	}
	if _, ok := p.requests.get(id); !ok {
		return p.render(w, http.StatusBadRequest, pageData{Title: "Log in", Error: "This login request is unknown or has expired. Start again from your application."})
	}
	name := r.PostFormValue("username")
	acct, err := p.opt.Login.Login(r.Context(), identity.Credentials{
		Name: name, Password: r.PostFormValue("password"), OTP: strings.TrimSpace(r.PostFormValue("otp")),
	}, httpapi.PeerAddr(r))
	if err == nil && (acct.Disabled || acct.Anonymized) {
		err = identity.ErrInvalidCredentials
	}
	if err != nil {
		status, msg := loginError(err)
		if status >= 500 {
			p.log.Error("login", slog.String("request_id", httpapi.RequestID(r.Context())), slog.Any("error", err))
		}
		return p.render(w, status, pageData{Title: "Log in", Error: msg, Action: loginPath, CSRF: p.newCSRF(w, loginPath), RequestID: id, Username: name})
	}
	if !p.requests.complete(id, acct.ID, p.now(), amrOf(acct)) {
		return p.render(w, http.StatusBadRequest, pageData{Title: "Log in", Error: "This login request was already used or has expired."})
	}
	// A fixed path on this server; id names a pending request that exists.
	http.Redirect(w, r, authCallbackPath+"?id="+url.QueryEscape(id), http.StatusFound) // #nosec G710 -- see above
	return nil
}

func amrOf(a store.Account) []string {
	if a.TOTPSecret != nil {
		return []string{"pwd", "otp", "mfa"}
	}
	return []string{"pwd"}
}

func (p *Provider) devicePage(w http.ResponseWriter, r *http.Request) error {
	return p.render(w, http.StatusOK, pageData{Title: "Approve a device", Action: devicePath, CSRF: p.newCSRF(w, devicePath),
		Device: true, UserCode: r.URL.Query().Get("user_code")})
}

func (p *Provider) deviceSubmit(w http.ResponseWriter, r *http.Request) error {
	page := pageData{Title: "Approve a device", Action: devicePath, Device: true}
	if !checkCSRF(r) {
		page.Error = "The form expired or was not sent from this page. Reload it and try again."
		page.CSRF = p.newCSRF(w, devicePath)
		return p.render(w, http.StatusForbidden, page)
	}
	code := normalizeUserCode(r.PostFormValue("user_code"))
	page.UserCode, page.Username = r.PostFormValue("user_code"), r.PostFormValue("username")
	// The password is checked before the code, so guessing user codes
	// costs a rate-limited login per guess.
	acct, err := p.opt.Login.Login(r.Context(), identity.Credentials{
		Name: page.Username, Password: r.PostFormValue("password"), OTP: strings.TrimSpace(r.PostFormValue("otp")),
	}, httpapi.PeerAddr(r))
	if err == nil && (acct.Disabled || acct.Anonymized) {
		err = identity.ErrInvalidCredentials
	}
	if err != nil {
		status, msg := loginError(err)
		page.Error, page.CSRF = msg, p.newCSRF(w, devicePath)
		return p.render(w, status, page)
	}
	approve := r.PostFormValue("action") != "deny"
	if _, ok := p.devices.lookup(code); !ok || !p.devices.decide(code, acct.ID, p.now(), amrOf(acct), approve) {
		page.Error, page.CSRF = "That code is unknown, expired or already used.", p.newCSRF(w, devicePath)
		return p.render(w, http.StatusBadRequest, page)
	}
	msg := "Device approved. You can close this page and return to your device."
	if !approve {
		msg = "Request denied. The device will not be logged in."
	}
	return p.render(w, http.StatusOK, pageData{Title: "Approve a device", Message: msg})
}

// normalizeUserCode accepts codes typed in lower case, with or without the
// dash, as RFC 8628 section 6.1 recommends.
func normalizeUserCode(s string) string {
	s = strings.ToUpper(strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, s))
	if len(s) == 8 {
		return s[:4] + "-" + s[4:]
	}
	return s
}
