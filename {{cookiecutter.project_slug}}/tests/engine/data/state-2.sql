BEGIN TRANSACTION;
CREATE TABLE conversation_items (
    conversation_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    id TEXT NOT NULL,
    item_key INTEGER NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
INSERT INTO "conversation_items" VALUES('conv_1',0,'item_0',10,96);
INSERT INTO "conversation_items" VALUES('conv_1',1,'item_1',11,102);
INSERT INTO "conversation_items" VALUES('conv_1',3,'item_3',13,102);
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires_at REAL NOT NULL,  -- its last change plus the TTL: past the bounds, the least recently changed go first
    items INTEGER NOT NULL,
    size INTEGER NOT NULL,  -- bytes of its items' JSON
    next_position INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO "conversations" VALUES('conv_1','{"id":"conv_1","created_at":1700000000,"metadata":{"topic":"demo"}}',2.11201024651225256929e+09,3,300,4);
CREATE TABLE events (
    response_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (response_id, seq)
) WITHOUT ROWID;
CREATE TABLE files (id TEXT PRIMARY KEY, purpose TEXT NOT NULL, record TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO "files" VALUES('file-00000000000000000000000000000000','user_data','{"id":"file-00000000000000000000000000000000","filename":"notes.txt","purpose":"user_data","bytes":12,"created_at":1700000000}');
CREATE TABLE item_holds (
    key INTEGER PRIMARY KEY,
    responses INTEGER NOT NULL DEFAULT 0,  -- stored responses listing it (once each, however often they list it)
    conversations INTEGER NOT NULL DEFAULT 0,  -- conversation positions holding it
    until REAL NOT NULL DEFAULT 0  -- the latest expiry of a response holding it: found by id only until then
);
INSERT INTO "item_holds" VALUES(1,1,0,2.11201024649445629117e+09);
INSERT INTO "item_holds" VALUES(2,1,0,2.11201024649445629117e+09);
INSERT INTO "item_holds" VALUES(3,1,0,2.11201024649445629117e+09);
INSERT INTO "item_holds" VALUES(4,1,0,2.11201024650545620916e+09);
INSERT INTO "item_holds" VALUES(5,1,0,2.11201024650545620916e+09);
INSERT INTO "item_holds" VALUES(6,1,0,2.11201024650545620916e+09);
INSERT INTO "item_holds" VALUES(7,1,0,2.11201024650595164293e+09);
INSERT INTO "item_holds" VALUES(8,1,0,2.11201024650595164293e+09);
INSERT INTO "item_holds" VALUES(9,1,0,2.11201024650595164293e+09);
INSERT INTO "item_holds" VALUES(10,1,1,2.11201024651242375376e+09);
INSERT INTO "item_holds" VALUES(11,1,1,2.11201024651242375376e+09);
INSERT INTO "item_holds" VALUES(13,1,1,2.11201024651242375376e+09);
INSERT INTO "item_holds" VALUES(14,1,0,2.11201024651242375376e+09);
INSERT INTO "item_holds" VALUES(15,1,0,2.11201024651242375376e+09);
INSERT INTO "item_holds" VALUES(16,1,0,2.11201024651242375376e+09);
CREATE TABLE items (
    key INTEGER PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    item_id TEXT,  -- the item's own id, by which `item_reference` finds it
    record TEXT NOT NULL
);
INSERT INTO "items" VALUES(1,'be4c2785c072da750cd125b5ac08d32f',NULL,'{"type":"message","role":"user","content":[{"type":"input_text","text":"turn 0 ünïcode"}]}');
INSERT INTO "items" VALUES(2,'b362f098dddd55bf272aa7ea9da964d3','rs_0','{"id":"rs_0","type":"reasoning","summary":[]}');
INSERT INTO "items" VALUES(3,'cdf9ca5be94d5f9bc907474a088da47b','msg_answer_0','{"id":"msg_answer_0","type":"message","role":"assistant","content":[{"type":"output_text","text":"answer 0"}],"status":"completed"}');
INSERT INTO "items" VALUES(4,'bad2a3c6dcfbbf05c84be30ea120f8d8','msg_client_note','{"id":"msg_client_note","type":"message","role":"user","content":[{"type":"input_text","text":"turn 1 ünïcode"}]}');
INSERT INTO "items" VALUES(5,'f81e72f9b68ee30dbdfcd91465eb9112','rs_1','{"id":"rs_1","type":"reasoning","summary":[]}');
INSERT INTO "items" VALUES(6,'72f0c0fbfa5fe2be7cbc0c1830559c30','msg_answer_1','{"id":"msg_answer_1","type":"message","role":"assistant","content":[{"type":"output_text","text":"answer 1"}],"status":"completed"}');
INSERT INTO "items" VALUES(7,'80bcafc73990f03d121c5959f7d907dd',NULL,'{"type":"message","role":"user","content":[{"type":"input_text","text":"turn 2 ünïcode"}]}');
INSERT INTO "items" VALUES(8,'730fd83e755642a7de70dee44960b1e6','rs_2','{"id":"rs_2","type":"reasoning","summary":[]}');
INSERT INTO "items" VALUES(9,'aaba8305d87174e1f0f339371f3f9c77','msg_answer_2','{"id":"msg_answer_2","type":"message","role":"assistant","content":[{"type":"output_text","text":"answer 2"}],"status":"completed"}');
INSERT INTO "items" VALUES(10,'a22d6670dfc5772e97124701abdfe6aa','item_0','{"type":"message","role":"user","content":[{"type":"input_text","text":"conv 0"}],"id":"item_0"}');
INSERT INTO "items" VALUES(11,'1799c2c9e7d95f582c5c51bb4efc9b5e','item_1','{"type":"message","role":"assistant","content":[{"type":"output_text","text":"conv 1"}],"id":"item_1"}');
INSERT INTO "items" VALUES(13,'029e72bc238644bf0b4a64d2290193df','item_3','{"type":"message","role":"assistant","content":[{"type":"output_text","text":"conv 3"}],"id":"item_3"}');
INSERT INTO "items" VALUES(14,'2d7812ccb99586dae1d4cd3c8decadca',NULL,'{"type":"message","role":"user","content":[{"type":"input_text","text":"conv turn"}]}');
INSERT INTO "items" VALUES(15,'afe9c7ec07aa2ca9b7b2538105bc36bb','rs_3','{"id":"rs_3","type":"reasoning","summary":[]}');
INSERT INTO "items" VALUES(16,'9278daf6a955d0cd2fdb7a3cb75da083','msg_answer_3','{"id":"msg_answer_3","type":"message","role":"assistant","content":[{"type":"output_text","text":"answer 3"}],"status":"completed"}');
CREATE TABLE responses (
    seq INTEGER PRIMARY KEY,  -- the order they were saved in: the oldest go first
    id TEXT NOT NULL UNIQUE,
    expires_at REAL NOT NULL,
    size INTEGER NOT NULL,  -- what its save added: its record, and the items it was first to store
    record TEXT NOT NULL,  -- the response, its output left out
    input_keys TEXT NOT NULL,  -- its input items' keys in order (a JSON array)
    output_keys TEXT NOT NULL,
    base INTEGER,  -- the turn it continued (seq), whose holds cover its first `own_from` input items
    own_from INTEGER NOT NULL DEFAULT 0,  -- it holds its input items from here on, and its output
    successors INTEGER NOT NULL DEFAULT 0,  -- later turns holding it as their base
    gone INTEGER NOT NULL DEFAULT 0  -- deleted, expired or pushed out, but kept unseen (renamed) while it has successors
);
INSERT INTO "responses" VALUES(1,'resp_0 1',2.11201024649445629117e+09,336,'{"id":"resp_0","object":"response","status":"completed","output":[]}','[1]','[2, 3]',NULL,0,1,1);
INSERT INTO "responses" VALUES(2,'resp_1',2.11201024650545620916e+09,359,'{"id":"resp_1","object":"response","status":"completed","output":[]}','[1, 2, 3, 4]','[5, 6]',1,3,1,0);
INSERT INTO "responses" VALUES(3,'resp_2',2.11201024650595164293e+09,336,'{"id":"resp_2","object":"response","status":"completed","output":[]}','[1, 2, 3, 4, 5, 6, 7]','[8, 9]',2,6,0,0);
INSERT INTO "responses" VALUES(4,'resp_3',2.11201024651242375376e+09,329,'{"id":"resp_3","object":"response","status":"completed","output":[]}','[10, 11, 13, 14]','[15, 16]',NULL,0,0,0);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until REAL NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX items_by_id ON items (item_id) WHERE item_id IS NOT NULL;
CREATE UNIQUE INDEX conversation_item_ids ON conversation_items (id, conversation_id);
COMMIT;
PRAGMA user_version = 2;
