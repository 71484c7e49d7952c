// Package registration builds, loads and checks the appservice registration file.
package registration
