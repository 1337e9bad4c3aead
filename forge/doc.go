// Package forge reports Mengi's verdict on a pull request back to the Git
// forge that hosts the deployments repository: a commit status on the pull
// request's head commit (context "mengi/validate" by default) and one comment
// on the pull request that Mengi edits in place on every run instead of adding
// a new one.
//
// Two forges are supported through their REST APIs: Gitea (API under
// /api/v1) and GitHub (api.github.com, or /api/v3 of GitHub Enterprise). Both
// take the same requests for what Mengi needs; they differ in the API's root,
// the authorization header and GitHub's pagination of comments.
//
//	c, err := forge.New(forge.Options{Kind: forge.KindGitea, APIURL: "http://127.0.0.1:3000/api/v1",
//		Repo: "team/deployments", Token: token})
//	err = c.SetStatus(ctx, sha, forge.Status{State: forge.StateFailure, Description: "2 files invalid"})
//	err = c.UpsertComment(ctx, 7, "<!-- mengi/validate -->", report)
//
// ParseCloneURL derives Kind, APIURL and Repo from the repository's clone URL.
//
// Errors carry the HTTP status and a short excerpt of the response body
// (*APIError); they never contain the token.
package forge
