// Starts `nurture lsp` for `.flow` files. The command is `nurture` on the
// PATH, or the `nurture.path` setting.
const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

let client;

function activate() {
  const command = vscode.workspace.getConfiguration('nurture').get('path') || 'nurture';
  client = new LanguageClient(
    'nurture',
    'nurture',
    { command, args: ['lsp'] },
    { documentSelector: [{ scheme: 'file', language: 'flow' }] },
  );
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
